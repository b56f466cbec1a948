"""Preloading the physics step's Warp kernels: recorded, not run; compiled before the step."""

from humanoid_rl_ros.robot.description import load_robot
import numpy as np
import pytest

wp = pytest.importorskip('warp')
mjw = pytest.importorskip('mujoco_warp')

from training.backends.kernel_preload import (_arrays, preload_kernels,  # noqa: E402
                                              recorded_modules)
from training.backends.mjwarp import MjWarpBackend  # noqa: E402


@wp.kernel
def _add_one(values: wp.array(dtype=float)):
    i = wp.tid()
    values[i] = values[i] + 1.0


def test_launches_are_recorded_not_run_and_warp_is_restored():
    values = wp.zeros(4, dtype=float, device='cpu')
    launch, capture_while = wp.launch, wp.capture_while
    runs = []
    with recorded_modules() as modules:
        wp.launch(_add_one, dim=4, inputs=[values], device='cpu')
        wp.launch(kernel=_add_one, dim=4, inputs=[values], device='cpu')
        wp.capture_while(values, while_body=lambda tag: runs.append(tag), tag='body',
                         stream=None)
        wp.capture_if(values, on_true=lambda: runs.append('yes'),
                      on_false=lambda: runs.append('no'))
    assert modules == [_add_one.module]  # once, though launched twice
    assert runs == ['body', 'yes', 'no']  # the loop body once, both branches
    assert np.all(values.numpy() == 0.0)  # nothing ran
    assert (wp.launch, wp.capture_while) == (launch, capture_while)
    with pytest.raises(RuntimeError):
        with recorded_modules():
            raise RuntimeError('step failed')
    assert wp.launch is launch  # restored after an error too
    wp.launch(_add_one, dim=4, inputs=[values], device='cpu')
    assert np.all(values.numpy() == 1.0)


def test_the_backend_compiles_every_kernel_of_the_step_before_its_first_launch():
    backend = MjWarpBackend(load_robot('kestrel'), 2, device='cpu')
    backend._kernels_preloaded = True  # stepped without it first: a state that is not all zero
    backend.step(2)
    backend._kernels_preloaded = False
    data = backend.warp_data
    before = {(id(owner), name): array.numpy().copy() for owner, name, array in _arrays(data)}

    def step():
        mjw.step(backend.warp_model, data)
    count = preload_kernels(step, 'cpu', state=data, max_workers=2)
    assert count > 10  # MuJoCo Warp's step builds dozens of specialized kernels
    after = {(id(owner), name): array.numpy() for owner, name, array in _arrays(data)}
    assert after.keys() == before.keys()
    for key, value in before.items():  # clears and copies of the step undone: bit for bit
        np.testing.assert_array_equal(after[key], value, err_msg=str(key[1]))
    with recorded_modules() as modules:
        step()
    assert len(modules) == count
    assert all(module.execs for module in modules)  # every one loaded before it first runs
    backend.step(1)
    assert backend._kernels_preloaded and np.all(np.isfinite(backend.warp_data.qpos.numpy()))
