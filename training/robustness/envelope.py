"""
The command envelope of an exported policy: the velocity it reaches for each command.

Nav2's controllers slow the robot down near every goal and turn it in place to the goal's
heading; a policy that stands through small commands stalls there, short of the goal, while
the controller keeps asking. The robustness suite checks a handful of commands; this sweeps
each command axis (forward, sideways, yaw rate) alone over the contract's command range, holds
each command, and measures the base velocity reached (mean after a rise time, body frame), in
CPU MuJoCo through the policy node's controller: the evaluator's episode loop
(:func:`training.evaluate.run_case`).

Per axis and direction it reports the *follow threshold*: the smallest command magnitude from
which every larger command of the sweep is followed within the tolerance (default 0.15 m/s and
0.15 rad/s, the suite's per-command targets). Commands below it are a dead zone; set the
controller's minimum speeds (e.g. Nav2 ``min_vel_x`` / ``min_speed_theta``) at or above it.

Usage (``--help`` lists every option)::

    python -m training.robustness.envelope models/humanoid_walk.yaml --out benchmarks/envelope
"""

from dataclasses import asdict, dataclass
import json
from pathlib import Path
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

from humanoid_rl_ros.core.contract import graph_sha256
from humanoid_rl_ros.core.policy_runtime import PolicyRuntime
from humanoid_rl_ros.robot.description import load_robot
from humanoid_rl_ros.sim.mujoco_sim import MujocoRobotSim
import numpy as np
from training.evaluate import CommandCase, EvalConfig, run_case
from training.robustness.episode import STAND_RAMP_S
from training.robustness.plots import _plt, FAIL_COLOR, PASS_COLOR
import tyro

__all__ = ['AXES', 'EnvelopeConfig', 'follow_threshold', 'main', 'plot_envelope',
           'sweep_commands', 'sweep_envelope']

AXES = ('vx_m_s', 'vy_m_s', 'wz_rad_s')
"""The command axes, in the order of the command vector (body frame, REP-103)."""
TRACE_KEY = {'vx_m_s': 'vx', 'vy_m_s': 'vy', 'wz_rad_s': 'wz'}
"""The evaluator's trace of the measured velocity along each axis."""


@dataclass(frozen=True)
class EnvelopeConfig:
    """How the sweep is run."""

    lin_step_m_s: float = 0.1
    """Spacing of the forward and sideways commands [m/s]."""
    yaw_step_rad_s: float = 0.1
    """Spacing of the yaw-rate commands [rad/s]."""
    hold_s: float = 6.0
    """Time each command is held [s]."""
    rise_s: float = 2.0
    """Time after the command starts that is left out of the mean [s]."""
    lin_tolerance_m_s: float = 0.15
    """A planar command is followed when the reached speed is within this [m/s]."""
    yaw_tolerance_rad_s: float = 0.15
    """A yaw-rate command is followed when the reached rate is within this [rad/s]."""
    seed: int = 0
    """Seed of the initial pose noise."""


def sweep_commands(low: float, high: float, step: float) -> List[float]:
    """Return the commands from ``low`` to ``high`` at ``step``, zero and both ends included."""
    if not step > 0.0:
        raise ValueError(f'the sweep step must be positive, got {step}')
    if not low <= 0.0 <= high:
        raise ValueError(f'a command range must contain zero, got [{low}, {high}]')
    out = [0.0]
    for sign, end in ((-1.0, low), (1.0, high)):
        k = 1
        while k * step < abs(end) - 1e-9:
            out.append(sign * k * step)
            k += 1
        if abs(end) > 0.0:
            out.append(end)
    return sorted(round(v, 6) for v in out)


def follow_threshold(commands: Sequence[float], reached: Sequence[float], tolerance: float,
                     direction: float) -> Optional[float]:
    """
    Return the smallest |command| on one side from which every larger one is followed.

    ``direction`` is +1 or -1: the side of zero looked at. A command is followed when
    ``|reached - command| <= tolerance`` (a reached value of None, a fall, is not). None when
    the largest command of that side is not followed (or the side has no command).
    """
    side = sorted((abs(c), _followed(c, r, tolerance))
                  for c, r in zip(commands, reached) if c * direction > 0.0)
    threshold = None
    for magnitude, followed in reversed(side):
        if not followed:
            break
        threshold = magnitude
    return threshold


def _followed(command: float, reached: Optional[float], tolerance: float) -> bool:
    return reached is not None and abs(reached - command) <= tolerance


def _reached(result, start_s: float) -> Tuple[float, float, float]:
    t = np.asarray(result.trace['t'])
    keep = t >= start_s
    if not keep.any():
        raise ValueError(f'no samples after {start_s:.2f} s: hold_s is shorter than rise_s')
    return tuple(float(np.mean(np.asarray(result.trace[TRACE_KEY[a]])[keep])) for a in AXES)


def sweep_envelope(contract_path: Path, cfg: EnvelopeConfig = EnvelopeConfig(),
                   robot_path: Optional[Path] = None,
                   axes: Sequence[str] = AXES) -> Dict[str, Any]:
    """Run the sweep and return the report (commands, reached velocities, thresholds)."""
    unknown = [a for a in axes if a not in AXES]
    if unknown:
        raise ValueError(f'unknown command axes {unknown}; known: {list(AXES)}')
    runtime = PolicyRuntime.load(contract_path)
    contract = runtime.contract
    robot = load_robot(robot_path if robot_path is not None else contract.robot)
    sim = MujocoRobotSim(robot, contract.physics_dt_s)
    low, high = contract.commands.as_bounds()
    steps = {'vx_m_s': cfg.lin_step_m_s, 'vy_m_s': cfg.lin_step_m_s,
             'wz_rad_s': cfg.yaw_step_rad_s}
    eval_cfg = EvalConfig(duration_s=cfg.hold_s, rise_s=cfg.rise_s, seeds=1, pushes=(False,))
    start_s = STAND_RAMP_S + eval_cfg.settle_s + cfg.rise_s
    report: Dict[str, Any] = {'policy': str(contract_path), 'robot': robot.name,
                              'policy_graph_sha256': graph_sha256(
                                  contract.onnx_path(contract_path)),
                              'config': asdict(cfg), 'axes': {}}
    for axis in axes:
        i = AXES.index(axis)
        tolerance = cfg.yaw_tolerance_rad_s if axis == 'wz_rad_s' else cfg.lin_tolerance_m_s
        commands = sweep_commands(low[i], high[i], steps[axis])
        rows = []
        for value in commands:
            command = [0.0, 0.0, 0.0]
            command[i] = value
            result = run_case(runtime, sim, CommandCase(f'{axis}={value:+.2f}', *command),
                              cfg.seed, False, eval_cfg)
            reached = _reached(result, start_s) if not result.fell else (None,) * 3
            rows.append({'command': value, 'fell': result.fell,
                         'reached': dict(zip(AXES, reached))})
            print(f'[envelope] {axis} {value:+.2f}: '
                  f'{"FELL" if result.fell else "reached %+.3f" % reached[i]}', flush=True)
        along = [r['reached'][axis] for r in rows]
        report['axes'][axis] = {
            'tolerance': tolerance, 'runs': rows,
            'falls': sum(r['fell'] for r in rows),
            'follow_threshold_negative': follow_threshold(commands, along, tolerance, -1.0),
            'follow_threshold_positive': follow_threshold(commands, along, tolerance, 1.0),
            'followed': [_followed(c, a, tolerance) for c, a in zip(commands, along)]}
    return report


def plot_envelope(report: Dict[str, Any], path: Path) -> Path:
    """Save reached against commanded velocity, one panel per axis, tolerance band shaded."""
    plt = _plt()
    axes = list(report['axes'])
    fig, panels = plt.subplots(1, len(axes), figsize=(4.6 * len(axes), 4.2), squeeze=False)
    units = {'vx_m_s': 'm/s', 'vy_m_s': 'm/s', 'wz_rad_s': 'rad/s'}
    titles = {'vx_m_s': 'forward', 'vy_m_s': 'sideways', 'wz_rad_s': 'yaw rate'}
    for ax, axis in zip(panels[0], axes):
        data = report['axes'][axis]
        cmd = np.array([r['command'] for r in data['runs']])
        got = np.array([np.nan if r['reached'][axis] is None else r['reached'][axis]
                        for r in data['runs']])
        tol = data['tolerance']
        line = np.linspace(cmd.min(), cmd.max(), 2)
        ax.fill_between(line, line - tol, line + tol, color=PASS_COLOR, alpha=0.15,
                        label=f'within {tol:g} {units[axis]}')
        ax.plot(line, line, color=PASS_COLOR, lw=1)
        ok = np.array(data['followed'])
        ax.plot(cmd[ok], got[ok], 'o', color='#1f5fa8', label='followed')
        ax.plot(cmd[~ok], got[~ok], 'x', color=FAIL_COLOR, ms=8, label='not followed')
        for key, sign in (('follow_threshold_negative', -1), ('follow_threshold_positive', 1)):
            if data[key] is not None:
                ax.axvline(sign * data[key], color='#777777', ls=':', lw=1)
        ax.set_title(f'{titles[axis]}: follows from '
                     f'{_fmt(data["follow_threshold_negative"], -1)} / '
                     f'{_fmt(data["follow_threshold_positive"], 1)} {units[axis]}', fontsize=10)
        ax.set_xlabel(f'command [{units[axis]}]')
        ax.set_ylabel(f'reached [{units[axis]}]')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc='upper left')
    fig.suptitle(f'Command envelope of {Path(report["policy"]).name} (dotted: follow '
                 'thresholds; below them the robot does not follow)', fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(value: Optional[float], sign: int) -> str:
    return 'never' if value is None else f'{sign * value:+.2f}'


@dataclass
class EnvelopeCommand:
    """Command line of ``python -m training.robustness.envelope``."""

    contract: tyro.conf.Positional[Path]
    """Policy contract (models/<name>.yaml); its ONNX file is named inside."""
    out: Path = Path('envelope_output')
    """Folder receiving envelope.json and envelope.png."""
    robot: Optional[Path] = None
    """Robot folder or robot.yaml; None: the contract's robot, under models/robots/."""
    axes: Tuple[str, ...] = AXES
    """Command axes swept (vx_m_s, vy_m_s, wz_rad_s)."""
    sweep: tyro.conf.OmitArgPrefixes[EnvelopeConfig] = EnvelopeConfig()
    """How the sweep is run."""


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; exit status 0 when every swept command is followed."""
    args = tyro.cli(EnvelopeCommand, args=argv, prog='python -m training.robustness.envelope',
                    description='The velocity an exported policy reaches for each command, '
                                'swept along each axis; its dead zones and follow thresholds.')
    report = sweep_envelope(args.contract, args.sweep, args.robot, args.axes)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / 'envelope.json').write_text(json.dumps(report, indent=1))
    png = plot_envelope(report, args.out / 'envelope.png')
    every = True
    for axis, data in report['axes'].items():
        every &= all(data['followed'])
        print(f'{axis}: follows from {_fmt(data["follow_threshold_negative"], -1)} and '
              f'{_fmt(data["follow_threshold_positive"], 1)}; {data["falls"]} falls; '
              f'{sum(data["followed"])}/{len(data["followed"])} commands followed')
    print(f'wrote {args.out / "envelope.json"} and {png}')
    return 0 if every else 1


if __name__ == '__main__':
    sys.exit(main())
