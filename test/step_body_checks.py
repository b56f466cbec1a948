"""
A check shared by the environment tests: the captured step body makes no host sync.

:func:`assert_step_body_has_no_host_syncs` runs one step body of a
:class:`training.env.LocomotionEnv` (with its random draws) as a CUDA graph would capture
it, with every tensor-to-host call (``item``, ``tolist``, ``nonzero``, ``bool()``, ...) and
every host-data tensor constructor patched to fail.
"""

import torch


def assert_step_body_has_no_host_syncs(env, monkeypatch) -> None:
    """Run the env's draws and captured step body; fail if any of it syncs with the host."""
    env.backend.validate_inputs = False  # as on CUDA: bad inputs are flagged on the device
    calls = []

    def forbid(name):
        def hook(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f'{name} inside the captured step body')
        return hook

    real_as_tensor = torch.as_tensor

    def as_tensor(data, *args, **kwargs):
        if not isinstance(data, torch.Tensor):
            forbid('torch.as_tensor(host data)')()
        return real_as_tensor(data, *args, **kwargs)

    try:
        with monkeypatch.context() as m:
            for name in ('__bool__', 'item', 'tolist', 'nonzero', '__float__', '__int__',
                         '__index__', 'numpy', 'cpu'):
                m.setattr(torch.Tensor, name, forbid(name))
            m.setattr(torch, 'nonzero', forbid('torch.nonzero'))
            m.setattr(torch, 'as_tensor', as_tensor)
            m.setattr(torch, 'tensor', lambda *a, **k: forbid('torch.tensor')())
            env._draw_randoms()
            env._draw_observation_randoms()
            env._step_body(captured=True)
    finally:
        env.backend.validate_inputs = True
    assert calls == []
    assert torch.isfinite(env._obs_buf).all()
