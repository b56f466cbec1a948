r"""
Where the env step's time goes: each randomization term and the terrain switched off in turn.

``gpu_throughput.py`` measures the env step of a training config as a whole; this script
measures the same step (:func:`gpu_throughput.measure_env_step`: ``LocomotionEnv.step``, one
CUDA graph, fed by the deterministic policy) once with the config as it is, once with each of
its switches off (a randomization term of ``env.randomization``, or ``terrain`` for the
heightfield terrain and its curriculum), and once with all of them off (measured second, after
the full config, so that a run cut short still has both ends), all in one process, so that one
call on the GPU machine says what each term costs (each variant builds, compiles and captures
its own step: allow about a minute per variant, or name fewer with ``--terms``)::

    python benchmarks/env_step_breakdown.py --config training/configs/real_world.yaml \
        --out env_step_breakdown.json

With ``--ground-contact-variant`` (default on) the full config is also measured with the
other ground contact setting (only the feet touching the ground, or every robot geom), and
with ``--foot-collision-variant`` (default on) with the other foot collision (the model's
boxes, or spheres on their soles: ``EnvConfig.foot_collision``).  With
``--solver-iterations`` (default: the robot model's 10, and 4) the full config is also
measured with the constraint solver limited to each of these iterations per physics step
(``EnvConfig.solver_iterations``; the config's own limit is the ``full`` variant): MuJoCo Warp
iterates until the slowest world converges.

Per variant: env-steps/s and its ratio to the full config's rate (the speed-up from leaving
that term out), and the solver iterations of the last physics step (max and mean over the
worlds: every world pays for the max).  With ``--profile-steps N`` (default 20) the full
config's step is also run N more times under ``torch.profiler``, and the device kernels
that took the most time are listed (name, calls per step, microseconds per step): the CUDA
graph's kernels, from MuJoCo Warp's solver to the compiled torch code.  On a CPU device (a
functional run at small sizes) the list holds the CPU operators instead.
"""

import dataclasses
from dataclasses import dataclass
import json
import math
from pathlib import Path
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

REPO_ROOT = Path(__file__).resolve().parents[1]
for folder in (REPO_ROOT, REPO_ROOT / 'benchmarks'):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import gpu_throughput  # noqa: E402
from humanoid_rl_ros.core.provenance import git_commit  # noqa: E402
from humanoid_rl_ros.robot.mujoco_model import (parse_collision_accuracy,  # noqa: E402
                                                SOLVER_ITERATIONS)
import mujoco  # noqa: E402
import torch  # noqa: E402
from training.config import switches_on  # noqa: E402
from training.config import with_switches_off as env_switches_off  # noqa: E402
import tyro  # noqa: E402


@dataclass
class BreakdownConfig:
    """What the breakdown measures, and where it writes the figures."""

    out: str
    """Path of the JSON results file (written after each variant)."""
    config: str = 'training/configs/real_world.yaml'
    """Training config file whose env step is measured (as python -m training.train --config)."""
    device: str = 'cuda:0'
    """Torch/warp device: cuda:0, or cpu for a tiny functional run."""
    num_envs: int = 4096
    """Worlds of every variant."""
    policy_steps: int = 200
    """Timed policy steps per variant."""
    terms: Tuple[str, ...] = ()
    """Switches to turn off one at a time (randomization term names, or 'terrain'); empty:
    every switch that is on in the config."""
    solver_iterations: Tuple[int, ...] = (SOLVER_ITERATIONS, 4)
    """Also measure the full config with the solver limited to each of these iterations per
    physics step and twice as many line search iterations (variants
    ``solver_iterations_<n>``; the config's own limit is left out); empty: none."""
    foot_collision_variant: bool = True
    """Also measure the full config with the other ``EnvConfig.foot_collision`` (the model's
    foot boxes, or spheres on their soles): variant ``foot_collision_<sole_spheres|model>``."""
    ccd: Tuple[str, ...] = ('35:1e-6', '35:1e-4', '12:1e-4')
    """Also measure the full config with the convex collision test limited to these
    ``ITERATIONS:TOLERANCE_M`` (``EnvConfig.ccd_iterations`` / ``ccd_tolerance``; variants
    ``ccd_<iterations>_<tolerance>``; the config's own setting is left out); empty: none."""
    ground_contact_variant: bool = True
    """Also measure the full config with the other ``EnvConfig.ground_contact`` (only the feet
    touching the ground, or every geom): variant ``ground_contact_<feet|all>``."""
    profile_steps: int = 20
    """Steps of the full config run under torch.profiler after its timed steps (0: none)."""
    top_kernels: int = 25
    """Kernels listed from the profile."""
    compile_setting: str = 'auto'
    """torch.compile setting of the env: 'auto' or 'off'."""


def with_switches_off(cfg: Any, names: Tuple[str, ...]) -> Any:
    """Return the TrainConfig ``cfg`` with the switches ``names`` off (ValueError if unknown)."""
    return dataclasses.replace(cfg, env=env_switches_off(cfg.env, names))


def with_ccd(cfg: Any, iterations: int, tolerance_m: float) -> Any:
    """Return the TrainConfig ``cfg`` with the convex collision test's limits set."""
    env = dataclasses.replace(cfg.env, ccd_iterations=iterations, ccd_tolerance=tolerance_m)
    return dataclasses.replace(cfg, env=env)


def with_solver_iterations(cfg: Any, iterations: int, ls_iterations: int) -> Any:
    """Return the TrainConfig ``cfg`` with the solver's iteration limits set."""
    env = dataclasses.replace(cfg.env, solver_iterations=iterations,
                              solver_ls_iterations=ls_iterations)
    return dataclasses.replace(cfg, env=env)


def top_kernels(prof: Any, steps: int, count: int) -> List[Dict[str, Any]]:
    """Return the ``count`` events of most self time per step (device time where recorded)."""
    rows = []
    for event in prof.key_averages():
        device_us = getattr(event, 'self_device_time_total', 0.0) or 0.0
        rows.append({'name': event.key, 'calls_per_step': event.count / steps,
                     'device_us_per_step': device_us / steps,
                     'cpu_us_per_step': event.self_cpu_time_total / steps})
    on_device = any(r['device_us_per_step'] > 0 for r in rows)
    key = 'device_us_per_step' if on_device else 'cpu_us_per_step'
    rows.sort(key=lambda r: r[key], reverse=True)
    return rows[:count]


def _profiler(device: torch.device, steps: int, count: int
              ) -> Callable[[Callable[[], None]], Dict[str, Any]]:
    def run(step: Callable[[], None]) -> Dict[str, Any]:
        activities = [torch.profiler.ProfilerActivity.CPU]
        if device.type == 'cuda':
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=activities) as prof:
            for _ in range(steps):
                step()
            gpu_throughput._sync(device)
        return {'steps': steps, 'kernels': top_kernels(prof, steps, count)}
    return run


def run(args: BreakdownConfig) -> Dict[str, Any]:
    """Measure every variant; return the results (also written after each variant)."""
    bench = gpu_throughput.BenchConfig(out=args.out, device=args.device,
                                       num_envs=(args.num_envs,),
                                       policy_steps=args.policy_steps, config=args.config,
                                       compile_setting=args.compile_setting)
    base = gpu_throughput.training_config(bench, args.num_envs)
    terms = tuple(args.terms) or tuple(switches_on(base.env))
    with_switches_off(base, terms)  # unknown names fail before anything runs
    device = torch.device(args.device)
    out: Dict[str, Any] = {'config_file': args.config, 'device': str(device),
                           'num_envs': args.num_envs, 'policy_steps': args.policy_steps,
                           'git_commit': git_commit(REPO_ROOT),
                           'gpu': torch.cuda.get_device_name(device)
                           if device.type == 'cuda' else None,
                           'variants': {}}
    # the two ends first, then the other solver and contact settings: a run cut short
    # still has them
    variants: List[Tuple[str, Tuple[str, ...]]] = [('full', ()), ('without_all', terms)]
    own = base.env.solver_iterations or SOLVER_ITERATIONS
    # variants of the full config that change something else than a switch
    changed = {f'solver_iterations_{n}': with_solver_iterations(base, n, 2 * n)
               for n in args.solver_iterations if n != own}
    own_ccd = (base.env.ccd_iterations or mujoco.MjOption().ccd_iterations,
               base.env.ccd_tolerance or mujoco.MjOption().ccd_tolerance)
    for setting in args.ccd:
        iterations, tolerance = parse_collision_accuracy(setting)
        if (iterations, tolerance) != own_ccd:
            changed[f'ccd_{iterations}_{tolerance:g}'] = with_ccd(base, iterations, tolerance)
    if args.ground_contact_variant:
        other = 'all' if base.env.ground_contact == 'feet' else 'feet'
        changed[f'ground_contact_{other}'] = dataclasses.replace(
            base, env=dataclasses.replace(base.env, ground_contact=other))
    if args.foot_collision_variant:
        other = 'model' if base.env.foot_collision == 'sole_spheres' else 'sole_spheres'
        changed[f'foot_collision_{other}'] = dataclasses.replace(
            base, env=dataclasses.replace(base.env, foot_collision=other))
    variants += [(label, ()) for label in changed]
    variants += [(f'without_{name}', (name,)) for name in terms]
    for label, off in variants:
        profile = _profiler(device, args.profile_steps, args.top_kernels) \
            if label == 'full' and args.profile_steps > 0 else None
        gpu_throughput._release_gpu_memory()
        try:
            cfg = changed[label] if label in changed else with_switches_off(base, off)
            res = gpu_throughput.measure_env_step(bench, args.num_envs, cfg=cfg, after=profile)
        except Exception as exc:  # record and keep going: the other variants still count
            res = {'error': f'{type(exc).__name__}: {exc}'}
        res['switched_off'] = list(off)
        res['solver_iterations'] = cfg.env.solver_iterations or SOLVER_ITERATIONS
        res['ground_contact'] = cfg.env.ground_contact
        res['foot_collision'] = cfg.env.foot_collision
        res['ccd'] = [cfg.env.ccd_iterations, cfg.env.ccd_tolerance]
        if 'after' in res:
            out['profile'] = res.pop('after')
        full = out['variants'].get('full', res).get('env_steps_per_s')
        if full and 'env_steps_per_s' in res:
            res['speedup_vs_full'] = res['env_steps_per_s'] / full
        out['variants'][label] = res
        print(_line(label, res), flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2))
    if 'kernels' in out.get('profile', {}):
        unit = 'device' if device.type == 'cuda' else 'cpu'
        print(f'top kernels of the full step ({unit} us per step, calls per step):')
        for row in out['profile']['kernels']:
            print(f'{row[f"{unit}_us_per_step"]:10.1f} {row["calls_per_step"]:7.1f}  '
                  f'{row["name"][:100]}')
    print(f'wrote {args.out}')
    return out


def _line(label: str, res: Dict[str, Any]) -> str:
    if 'error' in res:
        return f'{label:32s} ERROR {res["error"]}'
    speedup = res.get('speedup_vs_full', 1.0)
    solver = res.get('solver_iterations_last_step', {})
    return (f'{label:32s} {res["env_steps_per_s"] / 1e3:8.1f} k env-steps/s '
            f'(x{speedup:.2f} of full), solver iterations of the last step: max '
            f'{solver.get("max")}, mean {solver.get("mean", math.nan):.2f}')


def main(argv: Optional[List[str]] = None) -> int:
    """Parse the options and run the breakdown."""
    args = tyro.cli(BreakdownConfig, args=argv, prog='python benchmarks/env_step_breakdown.py',
                    description=__doc__.split('\n\n')[0].strip())
    run(args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
