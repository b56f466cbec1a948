"""
Train a humanoid velocity-tracking policy with PPO and export it to ONNX + policy contract.

Examples::

    # the GPU machine: thousands of MuJoCo Warp worlds
    python -m training.train --num-envs 4096 --time-budget-min 10 --run-name humanoid_walk
    # any machine, slowly: the same code path on the CPU
    python -m training.train --device cpu --num-envs 4 --iterations 2 --run-name smoke
    # change any config field (dotted: one option per field, listed by --help)
    python -m training.train --env.rewards.feet-phase 2.0 --ppo.learning-rate 5e-4
    # start from a YAML file (e.g. a run's config.yaml); options given too override it
    python -m training.train --config runs/smoke/config.yaml --iterations 10
    # 4 GPUs of one machine, data-parallel: 4 processes, each with its own 4096 envs
    torchrun --nproc-per-node 4 -m training.train --num-envs 4096 --run-name humanoid_walk

The run folder ``<log-root>/<run-name>/`` gets the resolved ``config.yaml``, TensorBoard logs,
the last ``runner.keep-checkpoints`` checkpoints, the history and the learning curves; the
policy is exported to ``<export-dir>/<run-name>.onnx`` with its contract
``<export-dir>/<run-name>.yaml``.

Started by ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` set), each process trains on
its own GPU ``cuda:LOCAL_RANK`` with its own ``--num-envs`` environments and seed ``seed +
rank``, data-parallel (:mod:`training.distributed`); rank 0 alone writes the run folder and the
exported policy.
"""

import contextlib
import dataclasses
from dataclasses import dataclass, field
import datetime
import math
from pathlib import Path
import signal
import sys
import threading
import time
from typing import Any, Dict, List, Literal, Optional, Sequence, Union

from humanoid_rl_ros.core.contract import plain_data, PolicyContract
from humanoid_rl_ros.core.provenance import git_commit
import torch
from training.backends import BackendUnavailableError
from training.config import EnvConfig
from training.distributed import (broadcast_values, DistContext, init_distributed, rank_seed,
                                  shutdown_distributed)
from training.env import LocomotionEnv
from training.export import export_policy
from training.ppo import PPOConfig
from training.runner import OnPolicyRunner, RunnerConfig, set_seed
import tyro
import yaml

PROG = 'python -m training.train'
DESCRIPTION = (
    'Train a velocity-tracking policy with PPO and export it to ONNX + policy contract. Every '
    'config field is an option below. --config FILE.yaml (for example the config.yaml of a run) '
    'reads the values of a YAML file as the defaults; the options given as well override them.')
REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass
class TrainConfig:
    """Everything one training run needs; saved as ``config.yaml`` in the run folder."""

    env: EnvConfig = field(default_factory=EnvConfig)
    """The locomotion task."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """The PPO learner."""
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    """Rollouts, logging and checkpoints."""
    backend: Literal['mjwarp', 'isaacgym'] = 'mjwarp'
    """Simulator backend: mjwarp (MuJoCo Warp) or isaacgym (Isaac Gym, where installed)."""
    device: str = 'cuda:0'
    """Torch/simulator device: cuda:0 for thousands of envs, cpu for small tests; under torchrun
    each process takes cuda:LOCAL_RANK (or the cpu)."""
    seed: int = 1
    """Seed of python, numpy, torch and the environment's sampling (under torchrun: seed +
    rank)."""
    iterations: int = 1500
    """PPO iterations (each collects num_envs x num_steps_per_env transitions)."""
    time_budget_min: float = 0.0
    """Stop after this much training wall time [min]; 0 means no budget."""
    stop_at_unix_s: float = 0.0
    """Stop training at this wall-clock time [s since the epoch], as the time budget would
    (after the iteration in progress, then the final checkpoint and export); 0: no deadline.
    For batch jobs with a hard limit: set it far enough before the limit for the last
    iteration, the checkpoint and the export, so that nothing depends on a signal arriving."""
    snapshot_interval_min: float = 0.0
    """
    With a time budget, also export the policy every this many minutes of training into the
    run folder's snapshots/, to find the earliest policy that meets the evaluator's targets;
    0 disables. Each chunk restarts the environments' episodes.
    """
    run_name: str = 'humanoid_walk'
    """Run folder name and exported policy name."""
    log_root: str = 'runs'
    """Folder holding run folders."""
    export_dir: str = 'models'
    """Folder receiving <run_name>.onnx and <run_name>.yaml."""
    resume: Optional[Path] = None
    """Checkpoint (model_<iteration>.pt) to continue training from; None starts afresh."""


def yaml_config_args(path: Union[str, Path]) -> List[str]:
    """
    Return the command-line options equivalent to the YAML config file at ``path``.

    Nested mappings become dotted options (``env: {rewards: {feet_phase: 2.0}}`` gives
    ``--env.rewards.feet-phase 2.0``), lists become several values, booleans ``--x`` /
    ``--no-x``; tyro then types and checks them like options typed by hand.
    """
    path = Path(path)
    if not path.is_file():
        raise SystemExit(f'--config: no config file at {path}')
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise SystemExit(f'--config: {path} does not hold a mapping of config fields')

    def options(mapping: Dict[str, Any], prefix: str) -> List[str]:
        args: List[str] = []
        for key, value in mapping.items():
            name = str(key).replace('_', '-')
            if isinstance(value, dict):
                args += options(value, f'{prefix}{name}.')
            elif isinstance(value, bool):
                args.append(f'--{prefix}{name}' if value else f'--{prefix}no-{name}')
            elif isinstance(value, (list, tuple)):
                args += [f'--{prefix}{name}', *(str(item) for item in value)]
            else:
                args += [f'--{prefix}{name}', str(value)]
        return args

    return options(data, '')


def parse_config(argv: Optional[Sequence[str]] = None) -> TrainConfig:
    """
    Return the TrainConfig of a command line (``sys.argv[1:]`` by default).

    ``--config FILE.yaml`` (anywhere on the line) is read first and its values become the
    defaults; the other options override them.  Unknown or mistyped fields are an error that
    names them.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    default = None
    for i, arg in enumerate(args):
        if arg.startswith('--config='):
            path, args = arg.split('=', 1)[1], args[:i] + args[i + 1:]
        elif arg == '--config' and i + 1 < len(args):
            path, args = args[i + 1], args[:i] + args[i + 2:]
        else:
            continue
        try:
            default = tyro.cli(TrainConfig, args=yaml_config_args(path), prog=PROG,
                               description=DESCRIPTION)
        except SystemExit:
            print(f'--config: the option above comes from {path}', file=sys.stderr)
            raise
        break
    return tyro.cli(TrainConfig, args=args, default=default, prog=PROG,
                    description=DESCRIPTION)


def dump_config(cfg: Any, path: Union[str, Path]) -> Path:
    """Write the resolved config ``cfg`` (a dataclass) as YAML to ``path``; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(plain_data(cfg), sort_keys=False, width=100))
    return path


@contextlib.contextmanager
def stop_on_signals(runner: OnPolicyRunner):
    """
    While in this context, SIGINT and SIGTERM ask ``runner`` to stop after its iteration.

    The first signal only sets ``runner.stop_requested`` (the iteration in progress ends, then
    training stops and keeps a checkpoint): an exception raised at a random point (inside an
    import, a lock, a plot) could leave the process unable to save, or hang it. A second signal
    raises KeyboardInterrupt at once. Outside the main thread this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame) -> None:
        if runner.stop_requested:
            raise KeyboardInterrupt(f'signal {signum} again')
        runner.stop_requested = True
        print(f'[train] {signal.Signals(signum).name}: stopping after this iteration '
              '(again to stop at once)', flush=True)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _learn(cfg: TrainConfig, runner: OnPolicyRunner, contract: PolicyContract,
           run_dir: Path) -> List[Dict[str, float]]:
    """
    Run the iterations or the time budget, exporting snapshots if asked; return history.

    Every process runs the same chunks (the runner's wall time is rank 0's); rank 0 exports.
    """
    def deadline_left_s() -> float:
        """Seconds to ``stop_at_unix_s`` by rank 0's clock (every process the same)."""
        if cfg.stop_at_unix_s <= 0:
            return math.inf
        left = cfg.stop_at_unix_s - time.time()
        if runner.dist.enabled:
            left = broadcast_values([left], runner.device)[0]
        return left

    if cfg.time_budget_min <= 0:
        left_s = deadline_left_s()
        if left_s == math.inf:
            return runner.learn(num_iterations=cfg.iterations)
        return runner.learn(num_iterations=cfg.iterations, time_budget_s=left_s) \
            if left_s > 0.0 else []
    budget_s = cfg.time_budget_min * 60.0
    chunk_s = cfg.snapshot_interval_min * 60.0 if cfg.snapshot_interval_min > 0 else budget_s
    start_wall = runner.wall_time_s
    history: List[Dict[str, float]] = []
    while runner.wall_time_s - start_wall < budget_s - 1.0 and not runner.stop_requested:
        left_s = min(budget_s - (runner.wall_time_s - start_wall), deadline_left_s())
        if left_s < 1.0:
            break  # the deadline: stop as at the end of the budget
        history = runner.learn(time_budget_s=min(chunk_s, left_s))
        if runner.stop_requested:
            break
        if cfg.snapshot_interval_min > 0 and runner.dist.is_main:
            name = f'{cfg.run_name}_it{runner.current_iteration:05d}'
            export_policy(runner.actor, runner.obs_normalizer,
                          dataclasses.replace(contract, onnx_file=f'{name}.onnx'),
                          run_dir / 'snapshots', name, provenance=_run_provenance(cfg, runner))
    return history


def _run_provenance(cfg: TrainConfig, runner: OnPolicyRunner) -> Dict[str, Any]:
    """Return what a snapshot and the final export record of the run so far."""
    return {'commit': git_commit(REPO_ROOT),
            'seed': cfg.seed,
            'iterations': runner.current_iteration,
            'env_steps': runner.total_env_steps,
            'train_wall_time_s': round(runner.wall_time_s, 1),
            'train_startup_s': round(runner.startup_s, 1),
            'backend': cfg.backend,
            'num_envs': cfg.env.num_envs,
            'config': plain_data(cfg)}


def train(cfg: TrainConfig, command_line: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """
    Run training as configured, export the policy, and return a summary of the run.

    Under torchrun every process calls this (module doc); the summary's ``onnx`` and
    ``contract`` are None on ranks other than 0, which write nothing.
    """
    ctx, device, joined = init_distributed(cfg.device)
    try:
        return _train(cfg, command_line, ctx, device)
    finally:
        if joined:
            shutdown_distributed()


def _train(cfg: TrainConfig, command_line: Optional[Sequence[str]], ctx: DistContext,
           device: torch.device) -> Dict[str, Any]:
    """Run :func:`train` in this process (rank ``ctx.rank`` on ``device``)."""
    set_seed(rank_seed(cfg.seed, ctx))
    main_rank = ctx.is_main

    def say(text: str) -> None:
        if main_rank:
            print(text, flush=True)

    run_dir = Path(cfg.log_root) / cfg.run_name
    if main_rank:
        run_dir.mkdir(parents=True, exist_ok=True)
        dump_config(cfg, run_dir / 'config.yaml')
    processes = (f'{ctx.world_size} processes ({device.type}), ' if ctx.enabled else '')
    say(f'[train] run folder {run_dir}; backend {cfg.backend} on {cfg.device}, '
        f'{processes}{cfg.env.num_envs} envs{" each" if ctx.enabled else ""}, '
        f'robot {cfg.env.robot}')
    keep = cfg.runner.keep_checkpoints
    say(f'[train] a checkpoint every {cfg.runner.save_interval} iterations, '
        + (f'the last {keep} kept (older ones are deleted)' if keep > 0 else 'all kept')
        + (f'; a snapshot policy every {cfg.snapshot_interval_min:g} min into '
           f'{run_dir / "snapshots"}, all kept' if cfg.snapshot_interval_min > 0 else ''))

    start = time.perf_counter()
    env = LocomotionEnv(cfg.env, backend_name=cfg.backend, device=str(device))
    say(f'[train] env ready in {time.perf_counter() - start:.1f} s: obs {env.num_obs}, '
        f'critic obs {env.num_critic_obs}, actions {env.num_actions}, reward terms '
        f'{[name for name, _, _ in env.reward_terms]}')
    runner = OnPolicyRunner(env, cfg.ppo, cfg.runner, log_dir=run_dir, device=device,
                            distributed=ctx)
    if cfg.resume is not None:
        runner.resume(cfg.resume)  # on every process
        say(f'[train] resumed from {cfg.resume} at iteration {runner.current_iteration}')
    contract = env.contract(onnx_file=f'{cfg.run_name}.onnx')
    try:
        with stop_on_signals(runner):
            history = _learn(cfg, runner, contract, run_dir)
        if runner.stop_requested:
            raise KeyboardInterrupt('stop requested by a signal')
    except BaseException:  # an error, a stop signal or a second Ctrl-C: keep the work done
        if main_rank:
            saved = runner.save(run_dir / f'model_{runner.current_iteration}_interrupted.pt')
            runner.save_history()
            say(f'[train] stopped early; saved {saved} (continue with --resume {saved})')
        raise
    if main_rank:
        runner.save()
    overflow = env.check_overflow()
    final = history[-1] if history else {}

    provenance = {
        **_run_provenance(cfg, runner),
        'created_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'device': (torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'),
        'command_line': ' '.join(command_line or sys.argv),
        'final_metrics': {k: float(v) for k, v in final.items()},
        'overflow': overflow,
        # worlds whose episode ended early for a tolerated buffer overflow (overflow_tolerance)
        'overflow_cut_worlds': env.overflow_cut_worlds,
    }
    if ctx.enabled:
        provenance['world_size'] = ctx.world_size  # processes, each with num_envs envs
    onnx_path = contract_path = None
    if main_rank:
        onnx_path, contract_path = export_policy(
            runner.actor, runner.obs_normalizer, contract, Path(cfg.export_dir), cfg.run_name,
            provenance=provenance)
        say(f'[train] exported {onnx_path} and {contract_path}')
    env.close()
    return {'run_dir': run_dir, 'onnx': onnx_path, 'contract': contract_path,
            'history': history, 'provenance': provenance}


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command-line entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        train(parse_config(args), command_line=[*PROG.split(), *args])
    except BackendUnavailableError as exc:  # one clear message, no traceback
        raise SystemExit(str(exc)) from None
    except KeyboardInterrupt:  # stopped by a signal: the checkpoint is saved and named above
        raise SystemExit(130) from None


if __name__ == '__main__':
    main()
