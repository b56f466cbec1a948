"""Empirical normalizer statistics checked against numpy over several batches."""

import numpy as np
import pytest
import torch

from training.ppo import EmpiricalNormalizer


def test_running_stats_match_numpy_over_batches():
    rng = np.random.default_rng(0)
    norm = EmpiricalNormalizer(3, clip=None)
    chunks = []
    for size in (1, 7, 64, 300, 5):
        x = rng.normal([10.0, -2.0, 0.0], [3.0, 0.1, 1e-3], size=(size, 3)).astype(np.float32)
        chunks.append(x)
        norm.update(torch.from_numpy(x))
    all_x = np.concatenate(chunks).astype(np.float64)
    np.testing.assert_allclose(norm.mean.numpy(), all_x.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(norm.var.numpy(), all_x.var(0), rtol=1e-4, atol=1e-9)
    assert float(norm.count) == len(all_x)


def test_normalize_formula_eps_and_clip():
    norm = EmpiricalNormalizer(2, eps=1e-2, clip=5.0)
    norm.update(torch.tensor([[0.0, 1.0], [2.0, 1.0]]))   # mean [1, 1], std [1, 0]
    y = norm(torch.tensor([[3.0, 1.0], [1.0, 2.0]]))
    # (3 - 1) / (1 + 0.01); (1 - 1) / (0 + 0.01) = 0; (2 - 1) / 0.01 = 100 -> clipped to 5.
    torch.testing.assert_close(y, torch.tensor([[2.0 / 1.01, 0.0], [0.0, 5.0]]))


def test_forward_does_not_update_and_leading_dims_are_kept():
    norm = EmpiricalNormalizer(4)
    x = torch.randn(2, 5, 4) * 3 + 1
    norm.update(x)
    mean = norm.mean.clone()
    assert norm(x).shape == (2, 5, 4)
    torch.testing.assert_close(norm.mean, mean)
    assert float(norm.count) == 10


def test_until_freezes_statistics():
    norm = EmpiricalNormalizer(1, until=4)
    norm.update(torch.ones(4, 1))
    norm.update(torch.full((4, 1), 100.0))
    assert norm.mean.item() == pytest.approx(1.0)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match='eps'):
        EmpiricalNormalizer(2, eps=0.0)
    with pytest.raises(ValueError, match='clip'):
        EmpiricalNormalizer(2, clip=-1.0)


def test_old_checkpoint_with_scalar_count_loads():
    """A state dict from before the count became shape [1] (0-dim count) still loads."""
    old = EmpiricalNormalizer(3).state_dict()
    old['count'] = torch.tensor(42.0, dtype=torch.float64)
    norm = EmpiricalNormalizer(3)
    norm.load_state_dict(old)
    assert norm.count.shape == (1,) and float(norm.count) == 42.0
