"""
GPU throughput benchmark: raw MuJoCo Warp physics, backend steps, rollouts, training.

This file is longer than 500 lines: it is one benchmark script whose stages (and the
multi-GPU scaling launcher) share one set of options and one results file; running this one
file reproduces every throughput figure in benchmarks/RESULTS.md.

Run on the GPU machine (``python benchmarks/gpu_throughput.py --out results.json``); it
measures, for each ``--num-envs`` (default 4096 and 8192):

1. ``raw_physics``: bare ``mujoco_warp.step`` calls of our robot replayed from a CUDA graph
   (no torch); ctrl is held at the PD effort of the reset pose.  Physics steps/s =
   worlds x steps / s.
2. ``backend_step``: ``MjWarpBackend.step(decimation)`` (torch PD + physics, one CUDA graph
   per call); env-steps/s = worlds x calls / s, and its ratio to raw physics / decimation.
3. ``env_step``: ``LocomotionEnv.step`` (one CUDA graph, torch code compiled) fed by the
   deterministic policy -- :func:`measure_env_step`.
4. ``rollout_collection`` and ``end_to_end_training``: ``OnPolicyRunner.learn`` iterations;
   collection is the runner's collection phase (sampling policy, env step, storage writes),
   end-to-end includes the PPO updates -- :func:`measure_training`.  Then
   ``backend_step_on_training_states``: ``backend.step`` alone, in rollout-length chunks
   that each restart from the states those iterations left (robots walking, falling, just
   reset; the last joint targets held): the physics share of collection.

3 and 4 use the env and PPO code of the repository (``--compile`` sets their torch.compile
setting); a failure there is recorded in the JSON (``error``) instead of stopping the
benchmark.  ``--config FILE.yaml`` (a training config, as ``python -m training.train
--config``) sets the task, PPO and runner settings of 3 and 4, e.g. the real-world training
(terrain, every randomization term, latency)::

    python benchmarks/gpu_throughput.py --config training/configs/real_world.yaml \
        --out real_world_throughput.json --train-iterations 30

``--num-envs`` and ``--compile`` override the file's values; so do ``--robot``,
``--decimation``, ``--physics-dt-s``, ``--nconmax`` and ``--njmax`` when given (left out, the
file's values hold, in every measurement; without ``--config``, the training defaults).  1 and
2 measure that robot on flat ground, without randomization, whatever the file says (with the
file's constraint solver limits, ``solver_iterations``), so the percentages of 3 and 4 are of
that raw rate.

Worlds are reset to the standing pose every ``--reset-every`` policy steps outside the timed
regions in 1 and 2, so the robots stay upright-ish and contact counts are realistic.  Every
timed region ends with a device synchronize.  Overflow reports of the backend are stored with
each figure.

``--scaling`` measures multi-GPU data-parallel training instead (:mod:`training.distributed`):
for each ``--num-envs`` (environments per GPU) and each GPU count N of ``--gpus`` (default 1,
2, 4 and 8, as far as the machine has GPUs), one ``torchrun --nproc-per-node N`` runs
``--train-iterations`` timed iterations of ``OnPolicyRunner.learn`` after two untimed ones
(compilation, graph captures); env-steps/s = N x envs x steps per env x iterations / the
slowest process's seconds.  Scaling efficiency = steps/s at N / (N x steps/s at 1); the target
is 90 % at 2 and 4 GPUs.  Asking for more GPUs than the machine has is an error before anything
runs.
"""

import dataclasses
from dataclasses import dataclass
import gc
import json
from pathlib import Path
import platform
import subprocess
import sys
import tempfile
import time
from typing import Annotated, Any, Callable, Dict, List, Literal, Mapping, Optional, Tuple

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from humanoid_rl_ros.core.contract import plain_data  # noqa: E402
from humanoid_rl_ros.core.provenance import git_commit  # noqa: E402
from humanoid_rl_ros.robot.description import load_robot  # noqa: E402
import torch  # noqa: E402
from training.backends.mjwarp import MjWarpBackend  # noqa: E402
import tyro  # noqa: E402
import warp as wp  # noqa: E402


@dataclass
class BenchConfig:
    """What the benchmark measures, and where it writes the figures."""

    out: str
    """Path of the JSON results file (written after each size)."""
    robot: Optional[str] = None
    """Robot name under models/robots/, or a robot folder / robot.yaml path; None: the
    --config file's robot (kestrel without one)."""
    device: str = 'cuda:0'
    """Torch/warp device: cuda:0, or cpu for a tiny functional run."""
    num_envs: Tuple[int, ...] = (4096, 8192)
    """Worlds per measurement; each size is measured in turn."""
    decimation: Optional[int] = None
    """Physics steps per policy step; None: the --config file's (4 without one)."""
    physics_dt_s: Optional[float] = None
    """Physics time step [s]; None: the --config file's (0.005 without one)."""
    policy_steps: int = 200
    """Timed policy steps per measurement."""
    reset_every: int = 50
    """Reset to standing every this many policy steps of raw_physics and backend_step (untimed)."""
    train_iterations: int = 5
    """Timed PPO iterations of rollout_collection and end_to_end_training."""
    nconmax: Optional[int] = None
    """Contacts per world, in every measurement; None: the --config file's (the env config's
    default without one)."""
    njmax: Optional[int] = None
    """Constraint rows per world, in every measurement; None: the --config file's (the env
    config's default without one)."""
    skip: Tuple[Literal['env_step', 'training'], ...] = ()
    """Measurements to skip."""
    compile_setting: Annotated[str, tyro.conf.arg(name='compile')] = 'auto'
    """torch.compile setting of the env and the runner: 'auto' or 'off'."""
    config: Optional[str] = None
    """Training config file (YAML, as python -m training.train --config) whose task, PPO and
    runner settings env_step and training use (e.g. training/configs/real_world.yaml); --num-envs
    and --compile override it, and so do --robot, --decimation, --physics-dt-s, --nconmax and
    --njmax when given. None: the training defaults."""
    scaling: bool = False
    """Measure multi-GPU scaling instead (module doc): end-to-end training env-steps/s on
    each GPU count of --gpus, --num-envs environments per GPU, and the scaling efficiency."""
    gpus: Tuple[int, ...] = ()
    """GPU counts of --scaling (1 is always measured, as the reference); default 1, 2, 4 and 8
    as far as the machine has GPUs; a count above the GPUs present is an error."""
    scaling_worker: bool = False
    """Internal: run as one process of a --scaling measurement (started by torchrun); rank 0
    writes the figures to --out."""


SCALING_TARGET = 0.9
"""Scaling efficiency aimed at with 2 and 4 GPUs (steps/s at N / (N x steps/s at 1))."""
DEFAULT_GPU_COUNTS = (1, 2, 4, 8)
"""GPU counts measured by --scaling without --gpus (those the machine has)."""
WARMUP_ITERATIONS = 2
"""Untimed iterations before a scaling measurement: compilation, env and update graphs."""


def _sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    wp.synchronize()


def reset_standing(backend: MjWarpBackend) -> None:
    """Put every world in the robot's default standing pose, at rest, targets at default."""
    n, dev, robot = backend.num_envs, backend.device, backend.robot
    key = torch.as_tensor(backend.mj_model.key_qpos[0][0:3], dtype=torch.float32, device=dev)
    default = torch.as_tensor(robot.default_pos_rad, dtype=torch.float32, device=dev)
    zeros3 = torch.zeros(n, 3, device=dev)
    quat = torch.tensor([1.0, 0.0, 0.0, 0.0], device=dev).repeat(n, 1)
    backend.reset_masked(torch.ones(n, dtype=torch.bool, device=dev), key.repeat(n, 1), quat,
                         zeros3, zeros3, default.repeat(n, 1),
                         torch.zeros(n, backend.num_joints, device=dev))
    backend.q_target.copy_(default.expand_as(backend.q_target))


def _time_in_chunks(restore: Callable[[], None], step: Callable[[], None], steps: int,
                    chunk: int, device: torch.device) -> float:
    """
    Return the seconds that ``steps`` calls of ``step`` take (device work included).

    The calls run in chunks of at most ``chunk``; before each chunk ``restore()`` runs outside
    the timed region.
    """
    elapsed, done = 0.0, 0
    while done < steps:
        restore()
        _sync(device)
        n = min(chunk, steps - done)
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        _sync(device)
        elapsed += time.perf_counter() - t0
        done += n
    return elapsed


def measure_raw_physics(backend: MjWarpBackend, decimation: int, policy_steps: int,
                        reset_every: int) -> Dict[str, Any]:
    """Return physics steps/s of bare ``mujoco_warp.step`` (CUDA graph of ``decimation`` steps)."""
    import mujoco_warp as mjw
    m, d, dev = backend.warp_model, backend.warp_data, backend.device
    reset_standing(backend)
    backend.last_effort.copy_(backend.compute_effort())  # ctrl held at the reset-pose PD effort
    graph = None
    stream = backend.warp_stream
    with wp.ScopedDevice(str(dev) if dev.type == 'cuda' else 'cpu'):
        for _ in range(decimation):  # eager warm-up (kernel load)
            mjw.step(m, d)
        _sync(dev)
        if dev.type == 'cuda':
            with wp.ScopedStream(stream), wp.ScopedCapture(stream=stream) as cap:
                for _ in range(decimation):
                    mjw.step(m, d)
            graph = cap.graph

        def run() -> None:
            if graph is not None:
                wp.capture_launch(graph, stream=stream)
            else:
                for _ in range(decimation):
                    mjw.step(m, d)

        def restore() -> None:
            reset_standing(backend)
            backend.last_effort.copy_(backend.compute_effort())

        elapsed = _time_in_chunks(restore, run, policy_steps, reset_every, dev)
    steps = backend.num_envs * decimation * policy_steps
    return {'physics_steps_per_s': steps / elapsed, 'seconds': elapsed,
            'cuda_graph': graph is not None, 'overflow': backend.check_overflow()}


def measure_backend_step(backend: MjWarpBackend, decimation: int, policy_steps: int,
                         reset_every: int) -> Dict[str, Any]:
    """Return env-steps/s of ``backend.step(decimation)`` (torch PD + physics)."""
    dev = backend.device
    reset_standing(backend)
    backend.step(decimation)  # first call: eager warm-up + CUDA graph capture
    backend.step(decimation)
    _sync(dev)
    backend.check_overflow(clear=True)
    elapsed = _time_in_chunks(lambda: reset_standing(backend), lambda: backend.step(decimation),
                              policy_steps, reset_every, dev)
    return {'env_steps_per_s': backend.num_envs * policy_steps / elapsed, 'seconds': elapsed,
            'cuda_graph': bool(backend.use_cuda_graph), 'overflow': backend.check_overflow()}


def _file_config(args: BenchConfig) -> Any:
    """Return the TrainConfig of ``--config``'s file (the training defaults without one)."""
    from training.train import parse_config
    return parse_config(['--config', args.config] if args.config else [])


def _raw_model(args: BenchConfig, robot: Any) -> Any:
    """Return the robot's MuJoCo model with the config file's solver limits (1 and 2)."""
    from humanoid_rl_ros.robot.mujoco_model import build_mujoco_model, set_solver_iterations
    env = _file_config(args).env
    model = build_mujoco_model(robot, args.physics_dt_s)
    set_solver_iterations(model, env.solver_iterations, env.solver_ls_iterations)
    return model


def resolve_options(args: BenchConfig) -> BenchConfig:
    """
    Return ``args`` with every option left out (None) taken from the ``--config`` file.

    Those are the robot, decimation, physics time step and buffers; without a file they are the
    training defaults (:class:`training.config.EnvConfig`).
    """
    missing = {name: key for name, key in (('robot', 'robot'), ('decimation', 'decimation'),
                                           ('physics_dt_s', 'physics_dt_s'),
                                           ('nconmax', 'nconmax_per_world'),
                                           ('njmax', 'njmax_per_world'))
               if getattr(args, name) is None}
    if not missing:
        return args
    env = _file_config(args).env
    return dataclasses.replace(args, **{name: getattr(env, key) for name, key in missing.items()})


def training_config(args: BenchConfig, num_envs: int) -> Any:
    """
    Return the TrainConfig that env_step and training measure at ``num_envs``.

    ``--config``'s file (or the defaults) with the benchmark's sizes and compile setting, and
    its robot, decimation, time step and buffers where given; no TensorBoard, no plots; the
    disturbances at full strength (no ``ramp_iterations``).
    """
    cfg = _file_config(args)
    given = resolve_options(args)
    # the disturbances at full strength from the first step, as after a curriculum's ramp
    rand = dataclasses.replace(cfg.env.randomization, ramp_iterations=0)
    env = dataclasses.replace(cfg.env, robot=given.robot, num_envs=num_envs, randomization=rand,
                              decimation=given.decimation, physics_dt_s=given.physics_dt_s,
                              compile_step=args.compile_setting, nconmax_per_world=given.nconmax,
                              njmax_per_world=given.njmax)
    runner = dataclasses.replace(cfg.runner, tensorboard=False, plot=False,
                                 torch_compile=args.compile_setting)
    return dataclasses.replace(cfg, env=env, runner=runner)


def _env_and_runner(args: BenchConfig, num_envs: int, device: Optional[Any] = None,
                    distributed: Optional[Any] = None, cfg: Optional[Any] = None
                    ) -> Tuple[Any, Any]:
    from training.env import LocomotionEnv
    from training.runner import OnPolicyRunner
    device = args.device if device is None else device
    cfg = training_config(args, num_envs) if cfg is None else cfg
    env = LocomotionEnv(cfg.env, 'mjwarp', str(device))
    runner = OnPolicyRunner(env, cfg.ppo, cfg.runner, log_dir=None, device=device,
                            distributed=distributed)
    return env, runner


def measure_env_step(args: BenchConfig, num_envs: int, cfg: Optional[Any] = None,
                     after: Optional[Callable[[Callable[[], None]], Any]] = None
                     ) -> Dict[str, Any]:
    """
    Return env-steps/s of ``LocomotionEnv.step`` fed by the deterministic policy.

    ``cfg``: the TrainConfig to build the env from (default: :func:`training_config`).
    ``after(step)``: called after the timed steps with a function that runs one more step
    (e.g. to profile a few); its result is returned under ``'after'``.
    """
    env, runner = _env_and_runner(args, num_envs, cfg=cfg)
    policy = runner.inference_policy()
    dev = torch.device(args.device)
    obs, _ = env.reset()
    for _ in range(10):  # warm-up, compilation, graph capture
        obs, _, _, _, _ = env.step(policy(obs))
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(args.policy_steps):
        obs, _, _, _, _ = env.step(policy(obs))
    _sync(dev)
    elapsed = time.perf_counter() - t0
    # solver iterations of the last physics step, per world: MuJoCo Warp iterates until the
    # slowest world converges, so the max is what every world paid for
    niter = env.backend.warp_data.solver_niter.numpy()
    extra = {'solver_iterations_last_step': {'max': int(niter.max()),
                                             'mean': float(niter.mean())}}
    if after is not None:
        state = {'obs': obs}

        def one_step() -> None:
            state['obs'] = env.step(policy(state['obs']))[0]
        try:
            extra['after'] = after(one_step)
        except Exception as exc:  # the timing above still counts
            extra['after'] = {'error': f'{type(exc).__name__}: {exc}'}
    report = env.check_overflow()
    env.close()
    return {'env_steps_per_s': num_envs * args.policy_steps / elapsed, 'seconds': elapsed,
            'graph_captured': env.graph_captured, 'overflow': report, **extra}


def measure_training(args: BenchConfig, num_envs: int) -> Dict[str, Any]:
    """
    Return the rollout-collection and end-to-end env-steps/s of ``OnPolicyRunner.learn``.

    Collection is the runner's own collection phase (sampling policy, env step, storage
    writes; it ends with a host read, so its clock is exact), summed over the timed
    iterations; end-to-end is every timed iteration, PPO updates included.
    """
    env, runner = _env_and_runner(args, num_envs)
    runner.learn(num_iterations=1)  # warm-up: kernel load, compilation, graph capture
    dev = torch.device(args.device)
    _sync(dev)
    t0 = time.perf_counter()
    rows = runner.learn(num_iterations=args.train_iterations)[-args.train_iterations:]
    _sync(dev)
    elapsed = time.perf_counter() - t0
    report = env.check_overflow()  # training's own physics (raises if it overflowed)
    steps = num_envs * runner.cfg.num_steps_per_env * args.train_iterations
    collect_s = sum(row['collection_time_s'] for row in rows)
    learn_s = sum(row['learn_time_s'] for row in rows)
    # The physics alone (backend.step: PD + physics graph) from the states training left:
    # robots walking, falling and just reset, whose contacts and solver iterations cost more
    # than the standing robots of raw_physics and backend_step.  Each timed chunk of one
    # rollout's length starts again from that snapshot (restored outside the timed region),
    # with the policy's last joint targets held, so the robots stay near the training states.
    backend = env.backend
    all_worlds = torch.ones(num_envs, dtype=torch.bool, device=dev)
    snapshot = tuple(t.clone() for t in (
        backend.base_pos, backend.base_quat, backend.base_lin_vel_world,
        backend.base_ang_vel_body, backend.joint_pos, backend.joint_vel))
    decimation = env.cfg.decimation
    backend.step(decimation)  # capture (if not yet) outside the timed region
    physics_s = _time_in_chunks(lambda: backend.reset_masked(all_worlds, *snapshot),
                                lambda: backend.step(decimation), args.policy_steps,
                                runner.cfg.num_steps_per_env, dev)
    # Robots that fall in these chunks lie on the ground until the chunk ends (training
    # would reset them), so on rough terrain they can outgrow the constraint rows that
    # training needs: judged apart, so that it cannot void the training figures above.
    physics_overflow = backend.check_overflow()
    env.close()
    return {
        'rollout_collection': {'env_steps_per_s': steps / collect_s, 'seconds': collect_s},
        'end_to_end_training': {'env_steps_per_s': steps / elapsed, 'seconds': elapsed,
                                'iterations': args.train_iterations,
                                'learn_seconds_per_iteration': learn_s / len(rows)},
        'backend_step_on_training_states': {
            'env_steps_per_s': num_envs * args.policy_steps / physics_s, 'seconds': physics_s,
            'nconmax': backend.nconmax, 'njmax': backend.njmax,
            'overflow': physics_overflow, 'valid': not physics_overflow['overflow']},
        'overflow': report}


def _release_gpu_memory() -> None:
    """Drop the previous measurement's compiled code, graphs and cached blocks."""
    gc.collect()
    torch._dynamo.reset()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()


def run(args: BenchConfig) -> Dict[str, Any]:
    """Run every measurement and return the results dict (also written after each size)."""
    args = resolve_options(args)
    dev = torch.device(args.device)
    robot = load_robot(args.robot)
    out: Dict[str, Any] = {
        'robot': args.robot, 'device': str(dev), 'decimation': args.decimation,
        'physics_dt_s': args.physics_dt_s, 'policy_steps': args.policy_steps,
        'compile': args.compile_setting,
        'git_commit': git_commit(REPO_ROOT),
        'machine': {'platform': platform.platform(), 'python': platform.python_version(),
                    'torch': torch.__version__, 'warp': wp.__version__,
                    'gpu': torch.cuda.get_device_name(dev) if dev.type == 'cuda' else None},
        **_config_record(args),
        'results': [],
    }
    try:
        import mujoco_warp
        out['machine']['mujoco_warp'] = mujoco_warp.__version__
    except (ImportError, AttributeError):
        pass
    print(f'env_step and training: the task config of {args.config or "the defaults"}',
          flush=True)
    for n in args.num_envs:
        row: Dict[str, Any] = {'num_envs': n}
        backend = MjWarpBackend(robot, n, device=args.device, physics_dt_s=args.physics_dt_s,
                                nconmax=args.nconmax, njmax=args.njmax,
                                mj_model=_raw_model(args, robot))
        row['nconmax'], row['njmax'] = backend.nconmax, backend.njmax
        row['raw_physics'] = measure_raw_physics(backend, args.decimation, args.policy_steps,
                                                 args.reset_every)
        row['backend_step'] = measure_backend_step(backend, args.decimation, args.policy_steps,
                                                   args.reset_every)
        ceiling = row['raw_physics']['physics_steps_per_s'] / args.decimation
        row['raw_physics_env_steps_per_s'] = ceiling
        row['backend_step']['ratio_to_raw_over_decimation'] = (
            row['backend_step']['env_steps_per_s'] / ceiling)
        del backend
        for name, fn in (('env_step', measure_env_step), ('training', measure_training)):
            if name in args.skip:
                continue
            _release_gpu_memory()
            try:
                res = fn(args, n)
            except Exception as exc:  # record and keep going: the physics figures still count
                row[name] = {'error': f'{type(exc).__name__}: {exc}'}
                continue
            parts = {name: res} if name == 'env_step' else {
                key: value for key, value in res.items() if key != 'overflow'}
            for key, part in parts.items():
                part['ratio_to_raw_over_decimation'] = part['env_steps_per_s'] / ceiling
                row[key] = part
            if name == 'training':
                row['training_overflow'] = res['overflow']
        out['results'].append(row)
        _print_row(row)
        _write(out, args.out)
    return out


def _config_record(args: BenchConfig) -> Dict[str, Any]:
    """Return the config file and the task config that env_step and training measure."""
    cfg = training_config(args, args.num_envs[0])
    env = plain_data(cfg.env)
    env.pop('num_envs')
    return {'config_file': args.config, 'env_config': env}


def _write(results: Dict[str, Any], path: str) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f'wrote {out}', flush=True)


def _print_row(row: Dict[str, Any]) -> None:
    n = row['num_envs']
    raw = row['raw_physics']['physics_steps_per_s']
    print(f'--- {n} envs (nconmax {row["nconmax"]}, njmax {row["njmax"]}) ---')
    print(f'raw physics                      {raw / 1e6:8.3f} M physics steps/s '
          f'(= {row["raw_physics_env_steps_per_s"] / 1e3:8.1f} k env-steps/s at this '
          f'decimation)')
    for name in ('backend_step', 'env_step', 'training', 'backend_step_on_training_states',
                 'rollout_collection', 'end_to_end_training'):
        res = row.get(name)
        if res is None:
            continue
        if 'error' in res:
            print(f'{name:32s} ERROR {res["error"]}')
            continue
        invalid = '' if res.get('valid', True) else \
            f' INVALID: buffers overflowed {res["overflow"]["flags"]}'
        print(f'{name:32s} {res["env_steps_per_s"] / 1e3:8.1f} k env-steps/s '
              f'({100 * res["ratio_to_raw_over_decimation"]:5.1f}% of raw / decimation)'
              f'{invalid}')
    rep = row['raw_physics']['overflow']
    print(f'raw_physics overflow: {rep["overflow"]} {rep["flags"]}')
    rep = row['backend_step']['overflow']  # peaks are tracked by backend.step only
    print(f'backend_step overflow: {rep["overflow"]} {rep["flags"]} (peak contacts '
          f'{rep["nacon_peak"]}/{rep["naconmax"]}, peak rows/world {rep["nefc_peak"]}/'
          f'{rep["njmax"]})')


# ---------------------------------------------------------------------- multi-GPU scaling
def scaling_gpu_counts(requested: Tuple[int, ...], available: int) -> Tuple[int, ...]:
    """
    Return the GPU counts to measure: ``requested`` (or the defaults that fit), with 1.

    Raises SystemExit with a message naming the counts when the machine has no GPU or fewer
    GPUs than the largest requested count.
    """
    if available < 1:
        raise SystemExit('--scaling needs CUDA GPUs; torch sees none on this machine')
    if any(int(n) < 1 for n in requested):
        raise SystemExit(f'--gpus: every GPU count must be >= 1, got {requested}')
    if not requested:
        return tuple(n for n in DEFAULT_GPU_COUNTS if n <= available)
    if max(requested) > available:
        raise SystemExit(
            f'--scaling asks for {max(requested)} GPUs (--gpus {" ".join(map(str, requested))}) '
            f'but this machine has {available} (torch.cuda.device_count()); give --gpus counts '
            f'of at most {available}')
    return tuple(sorted({1, *(int(n) for n in requested)}))


def scaling_efficiency(rates: Mapping[int, float]) -> Dict[int, float]:
    """
    Return ``{gpus: steps/s at gpus / (gpus x steps/s at 1 GPU)}`` for each measured count.

    ``rates`` maps a GPU count to its env-steps/s (all GPUs together); it must hold 1.
    """
    if 1 not in rates:
        raise ValueError('scaling efficiency needs the 1-GPU rate as its reference')
    return {n: rate / (n * rates[1]) for n, rate in sorted(rates.items())}


def torchrun_command(gpus: int, args: BenchConfig, num_envs: int, out: Path) -> List[str]:
    """Return the command line of one scaling measurement: ``gpus`` processes under torchrun."""
    given = [(option, value) for option, value in (
        ('--robot', args.robot), ('--decimation', args.decimation),
        ('--physics-dt-s', args.physics_dt_s), ('--nconmax', args.nconmax),
        ('--njmax', args.njmax)) if value is not None]  # left out: each process reads the file
    return [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nnodes', '1',
            '--nproc-per-node', str(gpus), str(Path(__file__).resolve()), '--scaling-worker',
            '--out', str(out), '--device', 'cuda:0', '--num-envs', str(num_envs),
            *(text for pair in given for text in (pair[0], str(pair[1]))),
            '--train-iterations', str(args.train_iterations), '--compile', args.compile_setting,
            *(['--config', str(Path(args.config).resolve())] if args.config else [])]


def measure_scaling_worker(args: BenchConfig) -> Optional[Dict[str, Any]]:
    """
    Run one process of a scaling measurement; return the figures on rank 0 (else None).

    Started by torchrun (or alone, as one process): every process trains ``num_envs[0]`` envs
    on its own GPU, data-parallel; the clock runs from a common start to the end of the
    slowest process's ``train_iterations`` iterations.
    """
    import torch.distributed as dist
    from training.distributed import init_distributed, rank_seed, shutdown_distributed
    from training.runner import set_seed
    ctx, device, joined = init_distributed(args.device)
    try:
        set_seed(rank_seed(1, ctx))
        num_envs = args.num_envs[0]
        env, runner = _env_and_runner(args, num_envs, device, ctx)
        runner.learn(num_iterations=WARMUP_ITERATIONS)

        def slowest(seconds: float) -> float:  # also a barrier: every process gets here
            value = torch.tensor([seconds], dtype=torch.float64, device=device)
            if ctx.enabled:
                dist.all_reduce(value, op=dist.ReduceOp.MAX)
            return float(value)

        _sync(device)
        slowest(0.0)
        t0 = time.perf_counter()
        rows = runner.learn(num_iterations=args.train_iterations)[-args.train_iterations:]
        _sync(device)
        seconds = slowest(time.perf_counter() - t0)
        report = env.check_overflow()
        env.close()
        steps = ctx.world_size * num_envs * runner.cfg.num_steps_per_env * args.train_iterations
        result = {
            'gpus': ctx.world_size, 'num_envs_per_gpu': num_envs,
            'iterations': args.train_iterations, 'seconds': seconds,
            'env_steps_per_s': steps / seconds,
            'rank0_collect_seconds_per_iteration': sum(
                r['collection_time_s'] for r in rows) / len(rows),
            'rank0_learn_seconds_per_iteration': sum(
                r['learn_time_s'] for r in rows) / len(rows),
            'rank0_overflow': report,
            'gpu': torch.cuda.get_device_name(device) if device.type == 'cuda' else None}
        if ctx.is_main:
            _write(result, args.out)
            return result
        return None
    finally:
        if joined:
            shutdown_distributed()


def launch(cmd: List[str]) -> int:
    """Run ``cmd`` (a torchrun of the worker mode) to its end; return its exit status."""
    return subprocess.run(cmd, check=False).returncode


def run_scaling(args: BenchConfig) -> Dict[str, Any]:
    """Measure every GPU count of ``--gpus`` at every ``--num-envs``; write and return results."""
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    counts = scaling_gpu_counts(tuple(args.gpus), available)
    args = resolve_options(args)
    out: Dict[str, Any] = {
        'mode': 'scaling', 'robot': args.robot, 'decimation': args.decimation,
        'train_iterations': args.train_iterations, 'warmup_iterations': WARMUP_ITERATIONS,
        'compile': args.compile_setting, 'gpus_present': available,
        **_config_record(args),
        'target_efficiency': SCALING_TARGET, 'git_commit': git_commit(REPO_ROOT),
        'machine': {'platform': platform.platform(), 'python': platform.python_version(),
                    'torch': torch.__version__, 'warp': wp.__version__,
                    'gpu': torch.cuda.get_device_name(0)},
        'results': []}
    with tempfile.TemporaryDirectory(prefix='gpu_scaling_') as tmp:
        for num_envs in args.num_envs:
            rows: List[Dict[str, Any]] = []
            for gpus in counts:
                part = Path(tmp) / f'{num_envs}envs_{gpus}gpus.json'
                cmd = torchrun_command(gpus, args, num_envs, part)
                print(f'[scaling] {gpus} GPU(s) x {num_envs} envs: {" ".join(cmd)}', flush=True)
                status = launch(cmd)
                if status != 0 or not part.is_file():
                    rows.append({'gpus': gpus, 'num_envs_per_gpu': num_envs,
                                 'error': f'torchrun exited with status {status}'})
                    continue
                rows.append(json.loads(part.read_text()))
            rates = {row['gpus']: row['env_steps_per_s'] for row in rows if 'error' not in row}
            efficiency = scaling_efficiency(rates) if 1 in rates else {}
            for row in rows:
                if row['gpus'] in efficiency:
                    row['efficiency'] = efficiency[row['gpus']]
                    row['meets_target'] = (row['gpus'] == 1
                                           or efficiency[row['gpus']] >= SCALING_TARGET)
            out['results'].append({'num_envs_per_gpu': num_envs, 'by_gpus': rows})
            _print_scaling(num_envs, rows)
            _write(out, args.out)
    return out


def _print_scaling(num_envs: int, rows: List[Dict[str, Any]]) -> None:
    print(f'--- scaling, {num_envs} envs per GPU (target efficiency '
          f'{100 * SCALING_TARGET:.0f} %) ---')
    for row in rows:
        if 'error' in row:
            print(f'{row["gpus"]} GPU(s): ERROR {row["error"]}')
            continue
        eff = row.get('efficiency')
        eff_text = '' if eff is None else f', efficiency {100 * eff:5.1f} %'
        print(f'{row["gpus"]} GPU(s): {row["env_steps_per_s"] / 1e3:9.1f} k env-steps/s'
              f'{eff_text}')


def main(argv: Optional[List[str]] = None) -> int:
    """Parse the options, run the benchmark, print figures and write the JSON."""
    args = tyro.cli(BenchConfig, args=argv, prog='python benchmarks/gpu_throughput.py',
                    description=__doc__.split('\n\n')[0].strip())
    if args.scaling_worker:
        measure_scaling_worker(args)
    elif args.scaling:
        run_scaling(args)
    else:
        run(args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
