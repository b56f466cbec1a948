"""Preloading the physics step's Warp kernels: recorded, not run; compiled before the step."""

from humanoid_rl_ros.robot.description import load_robot
import numpy as np
import pytest

wp = pytest.importorskip('warp')
mjw = pytest.importorskip('mujoco_warp')

from training.backends import kernel_preload, mjwarp  # noqa: E402
from training.backends.kernel_preload import (_arrays, default_workers,  # noqa: E402
                                              preload_kernels, recorded_modules)
from training.backends.mjwarp import MjWarpBackend  # noqa: E402


@wp.kernel
def _add_one(values: wp.array(dtype=float)):
    i = wp.tid()
    values[i] = values[i] + 1.0


@wp.kernel
def _add_two(values: wp.array(dtype=float)):
    i = wp.tid()
    values[i] = values[i] + 2.0


def test_launches_are_recorded_with_their_block_size_not_run_and_warp_is_restored():
    values = wp.zeros(4, dtype=float, device='cpu')
    launch, capture_while = wp.launch, wp.capture_while
    runs = []
    with recorded_modules() as modules:
        wp.launch(_add_one, dim=4, inputs=[values], device='cpu')
        wp.launch(kernel=_add_one, dim=(2, 2), inputs=[values], device='cpu')
        wp.launch(_add_one, dim=4, inputs=[values], device='cpu', block_dim=64)
        wp.launch(_add_two, dim=(4, 0), inputs=[values], device='cpu')  # no thread: not loaded
        wp.capture_while(values, while_body=lambda tag: runs.append(tag), tag='body',
                         stream=None)
        wp.capture_if(values, on_true=lambda: runs.append('yes'),
                      on_false=lambda: runs.append('no'))
    # once per block size, though launched three times; the empty launch left out
    assert modules == [(_add_one.module, None), (_add_one.module, 64)]
    assert runs == ['body', 'yes', 'no']  # the loop body once, both branches
    assert np.all(values.numpy() == 0.0)  # nothing ran
    assert (wp.launch, wp.capture_while) == (launch, capture_while)
    with pytest.raises(RuntimeError):
        with recorded_modules():
            raise RuntimeError('step failed')
    assert wp.launch is launch  # restored after an error too
    wp.launch(_add_one, dim=4, inputs=[values], device='cpu')
    assert np.all(values.numpy() == 1.0)


def test_each_block_size_is_loaded_as_launched(monkeypatch):
    loads = []
    monkeypatch.setattr(kernel_preload.wp, 'force_load',
                        lambda device, modules, block_dim, max_workers:
                        loads.append((str(device), sorted(m.name for m in modules), block_dim,
                                      max_workers)))

    def step():
        wp.launch(_add_one, dim=4, inputs=[wp.zeros(4, dtype=float, device='cpu')],
                  device='cpu')
        wp.launch(_add_two, dim=4, inputs=[wp.zeros(4, dtype=float, device='cpu')],
                  device='cpu', block_dim=32)
    assert preload_kernels(step, 'cpu', max_workers=3) == 2
    # one task per module and block size, each loading serially in its pool thread
    assert sorted(loads, key=str) == sorted([('cpu', [_add_one.module.name], None, 0),
                                             ('cpu', [_add_two.module.name], 32, 0)], key=str)
    assert 1 <= default_workers()


def test_the_first_step_compiles_nothing_the_preload_did_not(monkeypatch):
    built, in_preload = [], []
    load = wp.Module.load

    def counting_load(module, device, block_dim=None, *args, **kwargs):
        before = {key: id(value) for key, value in module.execs.items()}
        result = load(module, device, block_dim, *args, **kwargs)
        after = {key: id(value) for key, value in module.execs.items()}
        if after != before:  # a new or a replaced executable: a build
            built.append((module.name, bool(in_preload)))
        return result

    def preload(*args, **kwargs):
        in_preload.append(True)
        try:
            return preload_kernels(*args, **kwargs)
        finally:
            in_preload.clear()
    monkeypatch.setattr(wp.Module, 'load', counting_load)
    monkeypatch.setattr(mjwarp, 'preload_kernels', preload)
    backend = MjWarpBackend(load_robot('kestrel'), 2, device='cpu')
    for module in {m for m, _ in _recorded_physics(backend)}:
        module.unload()  # as on an empty kernel cache
    built.clear()
    backend.step(2)
    assert backend._kernels_preloaded
    assert any(during for _, during in built), 'the preload compiled nothing'
    late = [name for name, during in built if not during]
    assert late == [], f'compiled at their first launch: {late}'


def _recorded_physics(backend):
    """Return the (module, block_dim) launches of the backend's decimation loop's physics."""
    with recorded_modules() as modules:
        mjw.step(backend.warp_model, backend.warp_data)
        backend._foot_forces()
        mjw.kinematics(backend.warp_model, backend.warp_data)
    return modules


def test_the_preload_leaves_the_simulator_state_as_it_was():
    backend = MjWarpBackend(load_robot('kestrel'), 2, device='cpu')
    backend._kernels_preloaded = True  # stepped without it first: a state that is not all zero
    backend.step(2)
    data = backend.warp_data
    before = {(id(holder), name): array.numpy().copy() for holder, name, array in _arrays(data)}

    def step():
        mjw.step(backend.warp_model, data)
    count = preload_kernels(step, 'cpu', state=data, max_workers=2)
    assert count > 10  # MuJoCo Warp's step builds dozens of specialized kernels
    after = {(id(holder), name): array.numpy() for holder, name, array in _arrays(data)}
    assert after.keys() == before.keys()
    for key, value in before.items():  # clears and copies of the step undone: bit for bit
        np.testing.assert_array_equal(after[key], value, err_msg=str(key[1]))


def test_a_failed_build_in_the_preload_is_built_again_at_the_first_launch(monkeypatch):
    module = _add_two.module
    module.unload()
    build = wp.Module.load
    failures = []

    def fail_once(self, device, block_dim=None, *args, **kwargs):
        if self is module and not failures:
            failures.append(True)
            self.failed_builds[(None, 1)] = RuntimeError('out of memory')  # as Warp records
            raise RuntimeError('out of memory')
        return build(self, device, block_dim, *args, **kwargs)
    monkeypatch.setattr(wp.Module, 'load', fail_once)
    values = wp.zeros(4, dtype=float, device='cpu')
    with pytest.raises(RuntimeError, match='out of memory'):
        preload_kernels(lambda: wp.launch(_add_two, dim=4, inputs=[values], device='cpu'),
                        'cpu', max_workers=1)
    assert not module.failed_builds  # forgotten: the launch builds afresh
    wp.launch(_add_two, dim=4, inputs=[values], device='cpu')
    assert np.all(values.numpy() == 2.0)


def test_a_failed_preload_warns_and_the_step_still_runs(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError('no compiler')
    monkeypatch.setattr(mjwarp, 'preload_kernels', broken)
    backend = MjWarpBackend(load_robot('kestrel'), 2, device='cpu')
    with pytest.warns(UserWarning, match='compiling the physics kernels ahead failed'):
        backend.step(1)
    assert np.all(np.isfinite(backend.warp_data.qpos.numpy()))
