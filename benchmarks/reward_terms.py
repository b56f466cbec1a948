#!/usr/bin/env python3
r"""
What a policy's training reward is made of, term by term, with and without exploration noise.

An exported policy (ONNX) drives the training environment itself (``LocomotionEnv``, CPU MuJoCo
Warp, the config's randomization, terrain and latency) with its deterministic action plus
Gaussian noise of each given standard deviation (the action std a PPO run reached), and the
mean of every reward term per policy step is reported::

    run=benchmarks/time_to_policy_real_world/first_run
    python benchmarks/reward_terms.py \
        --policy $run/snapshot_it01318/real_world_it01318.onnx \
        --config training/configs/real_world.yaml --action-std 0 0.55 1.32 \
        --out $run/reward_terms.json

It answers "why is the training return negative while the deterministic policy walks": the
difference between the noisy and the noiseless rows is what the exploration noise costs in
each term. With ``--commands`` every env holds one fixed command per run instead of the
config's random ones, and ``--nominal`` runs on flat ground without randomization: that
answers "why does the policy stand through a small command" (compare a command it stands
through with one it walks at; ``--skip-steps`` leaves the start-up out of the means)::

    run=benchmarks/time_to_policy_real_world
    python benchmarks/reward_terms.py \
        --policy $run/snapshot_it02371/real_world_it02371.onnx \
        --config $run/config_resume2.yaml --action-std 0 --nominal \
        --commands -0.3 0 0  -0.5 0 0  0 0.3 0  0 0.5 0 --num-envs 4 --steps 350 \
        --skip-steps 150 --out $run/snapshot_it02371/reward_terms_by_command.json
 Disturbances are at full strength from the first step (the config's ramp is
skipped). Each term is recomputed from the env's state after each step, with the env's
scales and policy period, so the terms sum to the step reward up to the few worlds that were
reset in that step. Writes the JSON and a bar chart beside it (``.png``).
"""

from dataclasses import dataclass
import datetime
import json
import os
from pathlib import Path
import platform
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from humanoid_rl_ros.core.provenance import git_commit  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import tyro  # noqa: E402


@dataclass
class RewardTermsConfig:
    """Which policy runs where, and where the figures go."""

    policy: Path
    """The exported policy (``.onnx``; its observation must be the config's actor input)."""
    out: Path
    """Path of the JSON results file (the plot is written beside it as ``.png``)."""
    config: Path = REPO_ROOT / 'training' / 'configs' / 'real_world.yaml'
    """Training config file whose env the policy runs in."""
    action_std: Tuple[float, ...] = (0.0, 1.0)
    """Standard deviations of the Gaussian noise added to the policy's action, one run each."""
    num_envs: int = 128
    """Parallel environments (worlds)."""
    steps: int = 250
    """Policy steps per run (250 = 5 s at 50 Hz)."""
    seed: int = 0
    """Seed of the env and of the noise (the same for every run)."""
    commands: Tuple[float, ...] = ()
    """Fixed commands, (vx [m/s], vy [m/s], yaw rate [rad/s]) triples: one run per command
    and action std, every env holding it; empty: the config's random commands."""
    nominal: bool = False
    """Flat ground and every randomization term off (pushes, latency and noise included)."""
    skip_steps: int = 0
    """Policy steps at the start of each run left out of the means."""


def fixed_commands(flat: Sequence[float]) -> List[Optional[Tuple[float, float, float]]]:
    """Return the (vx, vy, yaw rate) triples of ``--commands``; ``[None]`` when none."""
    if len(flat) % 3:
        raise SystemExit(f'reward_terms: --commands takes (vx, vy, yaw rate) triples, got '
                         f'{len(flat)} numbers')
    triples = [tuple(float(v) for v in flat[i:i + 3]) for i in range(0, len(flat), 3)]
    return triples or [None]


def _env_config(cfg: RewardTermsConfig):
    """Return the env config of ``cfg.config`` at this size (nominal if asked)."""
    from training.config import switches_on, with_switches_off
    from training.train import parse_config

    env_cfg = parse_config(['--config', str(cfg.config), '--device', 'cpu',
                            '--num-envs', str(cfg.num_envs), '--seed', str(cfg.seed),
                            '--env.randomization.ramp-iterations', '0']).env
    return with_switches_off(env_cfg, switches_on(env_cfg)) if cfg.nominal else env_cfg


def run(cfg: RewardTermsConfig, action_std: float,
        command: Optional[Tuple[float, float, float]] = None) -> Dict[str, Any]:
    """Run the policy with noise ``action_std``; return the per-term means per policy step."""
    import onnxruntime as ort
    from training.env import LocomotionEnv

    if not 0 <= cfg.skip_steps < cfg.steps:
        raise SystemExit(f'reward_terms: --skip-steps must be in [0, --steps), got '
                         f'{cfg.skip_steps}')
    torch.manual_seed(cfg.seed)
    env = LocomotionEnv(_env_config(cfg), 'mjwarp', 'cpu')
    session = ort.InferenceSession(str(cfg.policy), providers=['CPUExecutionProvider'])
    inputs = session.get_inputs()[0]
    if inputs.shape[-1] != env.num_obs:
        raise SystemExit(f'reward_terms: {cfg.policy} takes {inputs.shape[-1]} observations, '
                         f'the env of {cfg.config} gives {env.num_obs}')
    generator = torch.Generator().manual_seed(cfg.seed)
    held = None if command is None else torch.tensor(command).repeat(env.num_envs, 1)

    def hold_command() -> None:
        # the env never resamples it; an env that fell and restarted observes its new random
        # command for one step, then the held one again
        if held is not None:
            env.commands.copy_(held)
            env.command_timer_s.fill_(float('inf'))

    obs, _ = env.reset()
    if held is not None:
        hold_command()
        env._observations()  # the first observation with the held command
        obs = env._obs_buf.clone()
    sums = {name: 0.0 for name, _, _ in env.reward_terms}
    velocity = torch.zeros(3)
    total, falls, start = 0.0, 0, time.perf_counter()
    for k in range(cfg.steps):
        mean = torch.from_numpy(session.run(None, {inputs.name: obs.numpy()})[0])
        action = mean + action_std * torch.randn(mean.shape, generator=generator)
        obs, _, reward, dones, extras = env.step(action)
        hold_command()
        if k >= cfg.skip_steps:
            for name, fn, scale in env.reward_terms:
                sums[name] += float((fn(env) * (scale * env.dt_s)).mean())
            total += float(reward.mean())
            velocity += torch.cat([env.base_lin_vel_b[:, :2],
                                   env.base_ang_vel_b[:, 2:3]], dim=1).mean(dim=0)
        falls += int((dones & ~extras['time_outs']).sum())
    env.close()
    counted = cfg.steps - cfg.skip_steps
    return {'action_std': action_std, 'command': None if command is None else list(command),
            'velocity_reached': (velocity / counted).tolist() if command is not None else None,
            'reward_per_step': total / counted,
            'falls': falls, 'env_steps': cfg.steps * cfg.num_envs,
            'seconds': time.perf_counter() - start,
            'terms_per_step': {name: value / counted for name, value in sums.items()}}


def run_label(row: Dict[str, Any]) -> str:
    """Return what a run was: its action std and, if held, its command and the velocity."""
    label = f"action std {row['action_std']:g}"
    if row.get('command') is not None:
        reached = ', '.join(f'{v:+.2f}' for v in row['velocity_reached'])
        label += f", command {tuple(row['command'])} (reached {reached})"
    return label


def plot(results: List[Dict[str, Any]], path: Path, title: str) -> None:
    """Save a horizontal bar chart of every term, one bar per action std."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    names = sorted(results[0]['terms_per_step'],
                   key=lambda n: results[-1]['terms_per_step'][n])
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(names) + 1.5))
    height = 0.8 / len(results)
    for k, row in enumerate(results):
        ys = np.arange(len(names)) + k * height
        ax.barh(ys, [row['terms_per_step'][n] for n in names], height,
                label=f"{run_label(row)}: {row['reward_per_step']:+.4f} per step, "
                      f"{row['falls']} falls")
    ax.set_yticks(np.arange(len(names)) + 0.4 - height / 2, names)
    ax.axvline(0.0, color='k', lw=0.8)
    ax.set_xlabel('mean reward per policy step (scale x policy period)')
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, loc='lower right')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] = None) -> int:
    """Run every action std, write the JSON and the plot, print a table."""
    args = tyro.cli(RewardTermsConfig, args=argv, prog='python benchmarks/reward_terms.py',
                    description=__doc__.split('\n\n')[0].strip())
    results = []
    for std in args.action_std:
        for command in fixed_commands(args.commands):
            row = run(args, std, command)
            results.append(row)
            print(f"{run_label(row)}: {row['reward_per_step']:+.4f} per step, "
                  f"{row['falls']} falls in {row['env_steps']} env steps "
                  f"({row['seconds']:.0f} s)", flush=True)
        for name, value in sorted(row['terms_per_step'].items(), key=lambda kv: kv[1]):
            print(f'  {name:20s} {value:+.5f}')
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        'command': 'python benchmarks/reward_terms.py ' + ' '.join(
            sys.argv[1:] if argv is None else argv),
        'policy': os.path.relpath(args.policy, REPO_ROOT), 'config': os.path.relpath(
            args.config, REPO_ROOT), 'num_envs': args.num_envs, 'steps': args.steps,
        'skip_steps': args.skip_steps, 'nominal': args.nominal, 'seed': args.seed,
        'commit': git_commit(REPO_ROOT),
        'date': datetime.date.today().isoformat(),
        'machine': f'{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, '
                   f'Python {platform.python_version()}',
        'results': results}
    args.out.write_text(json.dumps(record, indent=1) + '\n')
    plot(results, args.out.with_suffix('.png'),
         f'{args.policy.name} in {args.config.name}: reward terms per policy step')
    print(f'[reward_terms] wrote {args.out} and {args.out.with_suffix(".png")}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
