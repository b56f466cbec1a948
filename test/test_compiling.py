"""Tests of the torch.compile switch shared by the env step and the PPO loss."""

import pytest
import torch
from training import compiling
from training.compiling import compile_backend, maybe_compile


def test_auto_is_eager_on_cpu_and_inductor_on_cuda(monkeypatch):
    assert compile_backend('auto', 'cpu') is None
    monkeypatch.setattr(compiling, 'inductor_toolchain_missing', lambda: None)
    assert compile_backend('auto', 'cuda:0') == 'inductor'


def test_auto_falls_back_to_eager_when_the_toolchain_is_missing(monkeypatch):
    monkeypatch.setattr(compiling, 'inductor_toolchain_missing', lambda: 'no C compiler')
    with pytest.warns(UserWarning, match='no C compiler'):
        assert compile_backend('auto', 'cuda:0') is None


def test_off_and_explicit_backends():
    assert compile_backend('off', 'cuda:0') is None
    assert compile_backend('aot_eager', 'cpu') == 'aot_eager'
    with pytest.raises(ValueError, match="'inductr'"):
        compile_backend('inductr', 'cpu')


def test_maybe_compile_returns_the_function_itself_when_off():
    def double(x):
        return 2 * x
    assert maybe_compile(double, 'off', 'cpu') is double
    compiled = maybe_compile(double, 'aot_eager', 'cpu')
    assert compiled is not double
    assert torch.equal(compiled(torch.arange(3.0)), torch.tensor([0.0, 2.0, 4.0]))
