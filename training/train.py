"""
Train a humanoid velocity-tracking policy with PPO and export it to ONNX + policy contract.

Examples::

    # the GPU machine: thousands of MuJoCo Warp worlds
    python -m training.train --num-envs 4096 --time-budget-min 10 --run-name humanoid_walk
    # any machine, slowly: the same code path on the CPU
    python -m training.train --device cpu --num-envs 4 --iterations 2 --run-name smoke
    # change any config field
    python -m training.train --set env.rewards.feet_phase=2.0 ppo.learning_rate=5e-4

The run folder ``<log-root>/<run-name>/`` gets the resolved ``config.yaml``, TensorBoard logs,
checkpoints, the history and the learning curves; the policy is exported to
``<export-dir>/<run-name>.onnx`` with its contract ``<export-dir>/<run-name>.yaml``.
"""

import argparse
import dataclasses
from dataclasses import dataclass, field
import datetime
from pathlib import Path
import sys
import time
from typing import Any, Dict, List, Optional, Sequence

from humanoid_rl_ros.core.contract import PolicyContract
from humanoid_rl_ros.core.provenance import git_commit
import torch
from training.cli import add_config_arguments, build_config, config_to_dict, dump_config
from training.config import EnvConfig
from training.env import LocomotionEnv
from training.export import export_policy
from training.ppo import PPOConfig
from training.runner import OnPolicyRunner, RunnerConfig, set_seed

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
    backend: str = 'mjwarp'
    """Simulator backend: mjwarp (default) or isaacgym."""
    device: str = 'cuda:0'
    """Torch/simulator device: cuda:0 for thousands of envs, cpu for small tests."""
    seed: int = 1
    """Seed of python, numpy, torch and the environment's sampling."""
    iterations: int = 1500
    """PPO iterations (each collects num_envs x num_steps_per_env transitions)."""
    time_budget_min: float = 0.0
    """Stop after this much training wall time [min]; 0 means no budget."""
    snapshot_interval_min: float = 0.0
    """
    With a time budget: also export the policy every this many minutes of training into
    <run folder>/snapshots/, to find the earliest policy that meets the evaluator's targets;
    0 disables. Each chunk restarts the environments' episodes."""
    run_name: str = 'humanoid_walk'
    """Run folder name and exported policy name."""
    log_root: str = 'runs'
    """Folder holding run folders."""
    export_dir: str = 'models'
    """Folder receiving <run_name>.onnx and <run_name>.yaml."""


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Parse the command line (shortcut flags are turned into config overrides)."""
    parser = argparse.ArgumentParser(prog='python -m training.train', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--robot', help='robot name under models/robots or a robot.yaml path')
    parser.add_argument('--backend', choices=['mjwarp', 'isaacgym'])
    parser.add_argument('--device', help='cuda:0 or cpu')
    parser.add_argument('--num-envs', type=int, help='parallel environments')
    parser.add_argument('--iterations', type=int, help='PPO iterations')
    parser.add_argument('--time-budget-min', type=float, help='training wall-time budget [min]')
    parser.add_argument('--seed', type=int)
    parser.add_argument('--snapshot-interval-min', type=float,
                        help='export a snapshot policy every this many minutes of training')
    parser.add_argument('--run-name', help='run folder and exported policy name')
    parser.add_argument('--log-root', help='folder of run folders (default runs/)')
    parser.add_argument('--export-dir', help='where the ONNX + contract go (default models/)')
    parser.add_argument('--resume', type=Path, help='checkpoint to resume from')
    add_config_arguments(parser)
    return parser.parse_args(argv)


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Return the config: defaults, then --config, then --set, then the shortcut flags."""
    shortcuts = {'robot': 'env.robot', 'backend': 'backend', 'device': 'device',
                 'num_envs': 'env.num_envs', 'iterations': 'iterations',
                 'time_budget_min': 'time_budget_min', 'seed': 'seed', 'run_name': 'run_name',
                 'snapshot_interval_min': 'snapshot_interval_min',
                 'log_root': 'log_root', 'export_dir': 'export_dir'}
    overrides: List[str] = list(args.overrides)
    overrides += [f'{key}={getattr(args, flag)}' for flag, key in shortcuts.items()
                  if getattr(args, flag) is not None]
    return build_config(TrainConfig, overrides, args.config_file)


def _learn(cfg: TrainConfig, runner: OnPolicyRunner, contract: PolicyContract,
           run_dir: Path) -> List[Dict[str, float]]:
    """Run the iterations or the time budget, exporting snapshots if asked; return history."""
    if cfg.time_budget_min <= 0:
        return runner.learn(num_iterations=cfg.iterations)
    budget_s = cfg.time_budget_min * 60.0
    chunk_s = cfg.snapshot_interval_min * 60.0 if cfg.snapshot_interval_min > 0 else budget_s
    start_wall = runner.wall_time_s
    history: List[Dict[str, float]] = []
    while runner.wall_time_s - start_wall < budget_s - 1.0:
        left_s = budget_s - (runner.wall_time_s - start_wall)
        history = runner.learn(time_budget_s=min(chunk_s, left_s))
        if cfg.snapshot_interval_min > 0:
            name = f'{cfg.run_name}_it{runner.current_iteration:05d}'
            export_policy(runner.actor, runner.obs_normalizer,
                          dataclasses.replace(contract, onnx_file=f'{name}.onnx'),
                          run_dir / 'snapshots', name, provenance={
                              'iterations': runner.current_iteration,
                              'train_wall_time_s': round(runner.wall_time_s, 1)})
    return history


def train(cfg: TrainConfig, resume: Optional[Path] = None,
          command_line: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    """Run training as configured, export the policy, and return a summary of the run."""
    set_seed(cfg.seed)
    run_dir = Path(cfg.log_root) / cfg.run_name
    run_dir.mkdir(parents=True, exist_ok=True)
    dump_config(cfg, run_dir / 'config.yaml')
    print(f'[train] run folder {run_dir}; backend {cfg.backend} on {cfg.device}, '
          f'{cfg.env.num_envs} envs, robot {cfg.env.robot}', flush=True)

    start = time.perf_counter()
    env = LocomotionEnv(cfg.env, backend_name=cfg.backend, device=cfg.device)
    print(f'[train] env ready in {time.perf_counter() - start:.1f} s: obs {env.num_obs}, '
          f'critic obs {env.num_critic_obs}, actions {env.num_actions}, reward terms '
          f'{[name for name, _, _ in env.reward_terms]}', flush=True)
    runner = OnPolicyRunner(env, cfg.ppo, cfg.runner, log_dir=run_dir, device=cfg.device)
    if resume is not None:
        runner.resume(resume)
        print(f'[train] resumed from {resume} at iteration {runner.current_iteration}')
    contract = env.contract(onnx_file=f'{cfg.run_name}.onnx')
    try:
        history = _learn(cfg, runner, contract, run_dir)
    except BaseException:  # an error or Ctrl-C: keep the work done so far
        saved = runner.save(run_dir / f'model_{runner.current_iteration}_interrupted.pt')
        runner.save_history()
        print(f'[train] stopped early; saved {saved} (continue with --resume {saved})',
              flush=True)
        raise
    runner.save()
    overflow = env.check_overflow()
    final = history[-1] if history else {}

    provenance = {
        'commit': git_commit(REPO_ROOT),
        'created_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
        'seed': cfg.seed,
        'iterations': runner.current_iteration,
        'env_steps': runner.total_env_steps,
        'train_wall_time_s': round(runner.wall_time_s, 1),
        'backend': cfg.backend,
        'device': (torch.cuda.get_device_name(0) if cfg.device.startswith('cuda')
                   else 'cpu'),
        'num_envs': cfg.env.num_envs,
        'command_line': ' '.join(command_line or sys.argv),
        'final_metrics': {k: float(v) for k, v in final.items()},
        'overflow': overflow,
        'config': config_to_dict(cfg),
    }
    onnx_path, contract_path = export_policy(
        runner.actor, runner.obs_normalizer, contract, Path(cfg.export_dir), cfg.run_name,
        provenance=provenance)
    print(f'[train] exported {onnx_path} and {contract_path}', flush=True)
    env.close()
    return {'run_dir': run_dir, 'onnx': onnx_path, 'contract': contract_path,
            'history': history, 'provenance': provenance}


def main(argv: Optional[Sequence[str]] = None) -> None:
    """Command-line entry point."""
    args = parse_args(argv)
    cfg = resolve_config(args)
    train(cfg, resume=args.resume,
          command_line=['python', '-m', 'training.train', *(argv or sys.argv[1:])])


if __name__ == '__main__':
    main()
