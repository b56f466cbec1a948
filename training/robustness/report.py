"""
The robustness report: per-scenario figures and checks against :class:`Targets`, as JSON.

:func:`scenario_summary` aggregates a scenario's runs with
:func:`training.robustness.metrics.aggregate` (means over the runs without a fall; maxima for
peak values) and judges its checks; :func:`build_report` puts every scenario together with
what was run and how each perturbation is modelled. NaN and infinite values become ``null``
(strict JSON).
"""

from dataclasses import asdict
import json
import math
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np
from training.robustness.metrics import aggregate, JOINT_GROUP_KEYS
from training.robustness.runner import RunRecord
from training.robustness.scenarios import RISE_COMMAND, Scenario, Targets

__all__ = ['build_report', 'dumps_report', 'jsonable', 'METHODS', 'scenario_summary',
           'targets_met']

TRACKING_KEYS = ('lin_vel_error_m_s', 'vx_mae_m_s', 'vy_mae_m_s', 'yaw_rate_mae_rad_s',
                 'lin_vel_error_instant_m_s', 'yaw_rate_mae_instant_rad_s', 'planar_drift_m_s')
QUALITY_KEYS = tuple(f'torque_limit_share_{g}' for g, _ in JOINT_GROUP_KEYS) + (
    'torque_limit_share_other', 'action_rate_rad_s', 'peak_joint_speed_ratio', 'foot_slip_m_s',
    'cost_of_transport', 'mean_power_w', 'steps_per_10s', 'effort_share_mean',
    'effort_share_max')
COMMAND_KEYS = TRACKING_KEYS + QUALITY_KEYS + ('rise_time_s', 'along_slope_speed_m_s')

METHODS = {
    'episode': ('Each episode: 0.2 s stand ramp, then walking at zero command for the settle '
                "time, then the command; the policy (ONNX) runs through the policy node's "
                'controller at the policy rate of the contract and the PD law every physics '
                'tick, in CPU MuJoCo.'),
    'fall': ('Base below half its nominal height above the ground, tilted past 70 deg, or the '
             'controller leaving walking (its tilt limit).'),
    'tracking': ('Mean absolute error of the body-frame base velocity against the command, '
                 'after the rise time, on the velocity averaged over one gait period; '
                 'lin_vel_error is the planar norm of the vx and vy errors. Worst = the worst '
                 'command of a scenario (each command averaged over its runs).'),
    'rise': ('Time from the start of the command until the velocity along it, averaged over '
             'one gait period centred on each sample (so half a period ahead), reaches half '
             'the commanded speed; worst run.'),
    'pushes': ("A push adds its speed to the base link's horizontal velocity, in a direction "
               'uniform in [-pi, pi); times: first 1-2.5 s after the command starts, then gaps '
               'uniform in 2.5-4 s, so pushes meet the gait at random phases (the gait phase '
               'of each push is recorded). Falls per push event = falls / pushes applied.'),
    'friction': ('The sliding friction of every geom, robot included (MuJoCo takes the larger '
                 'coefficient of a contact pair).'),
    'payload': "A mass at the base's centre of mass with the inertia of a 0.2 m solid cube.",
    'motor_strength': "The efforts applied are the controller's times the factor.",
    'latency': ('latency_*ms: the controller sees every sensor value that much late and its '
                'efforts apply at once: the round trip of a deployment where the policy node '
                'computes the PD efforts. latency_joint_pd_*ms: the PD law runs in the joint '
                "drive on fresh data (contract gains) and only the policy's joint targets are "
                'that much late (a position-controlled drive).'),
    'sensor_noise': ('Uniform noise, drawn for every 5 ms measurement, on the gyro, the '
                     'orientation (a rotation about each body axis), joint positions and '
                     'velocities and the base velocity; the PD law sees the noisy joint state '
                     'too.'),
    'inertia': 'The armature (reflected rotor inertia) of every joint times the factor.',
    'pd_gains': ("kp and kd of the controller's PD law times the factor: the drive's real "
                 "gains differ from the contract's."),
    'slope': ('A ramp (heightfield) starting 0.5 m ahead of the start pose: the robot starts '
              'on flat ground and walks forward onto it (+x: up for slope_up, down for '
              'slope_down). Speed along the slope = world velocity projected on the ground '
              'in +x (the ramp, or the flat start before it), mean over the measured samples: '
              'the progress up or down the slope.'),
    'rough': ('A MuJoCo heightfield, heights uniform in [0, amplitude] on a 0.2 m grid '
              '(40 m square, flat within 0.5 m of the start), a new one per seed.'),
    'follows': ('The model and loop perturbation scenarios whose target is no falls (not the '
                'velocity-estimate ones) also check that the robot still walks as commanded: '
                'for every moving command, planar velocity error / max(commanded speed, a '
                'speed floor) and yaw rate error / max(commanded yaw rate, a yaw rate floor) '
                '(tracking errors as above; floors 0.3 m/s and 0.5 rad/s unless the targets '
                'say otherwise) stay within the target fraction (worst command).'),
    'standstill': ('Zero command for the stated time after settling; steps = foot lift-offs '
                   '(a foot in contact leaving it for >= 40 ms) per 10 s; drift = planar '
                   'displacement / time.'),
    'velocity_estimate': ('The base velocity the controller receives (odometry) is the true '
                          'body-frame velocity times the scale plus the bias.'),
    'quality': ('torque_limit_share_<group>: share of (sample, joint) pairs of the group with '
                '|effort| >= 99 % of its limit; action_rate: mean |change| of the joint targets '
                'per second; peak_joint_speed_ratio: largest |joint speed| / URDF velocity '
                'limit; foot_slip: mean horizontal speed of feet in contact; cost_of_transport: '
                'mean sum |effort x joint speed| / (mass g speed), speed = path through the '
                'base positions one gait period apart / time, for planar commands >= 0.2 m/s; '
                'steps_per_10s: foot lift-offs per 10 s.'),
}
"""How each perturbation and metric is modelled (copied into the report)."""


def _check(name: str, value: float, bound: str, passed: bool,
           note: str = '') -> Dict[str, Any]:
    """Return a check: its name, value, bound (e.g. ``'<= 0.15'``), verdict and a note."""
    return {'check': name, 'value': value, 'target': bound, 'note': note,
            'passed': bool(passed)}


def _worst(rows: Sequence[Mapping[str, Any]], key: str) -> float:
    values = [r[key] for r in rows if isinstance(r.get(key), (int, float)) and r[key] is not None]
    values = [v for v in values if not math.isnan(v)]
    return float(max(values)) if values else float('nan')


def _follow_ratio(scenario: Scenario, per_command: Mapping[str, Mapping[str, Any]],
                  targets: Targets) -> Tuple[float, str]:
    """
    Return the worst error-to-command ratio over the scenario's moving commands, and its name.

    Per moving command: the larger of planar velocity error / max(commanded speed, the speed
    floor) and yaw rate error / max(|commanded yaw rate|, the yaw rate floor), so a turn in
    place must not drift and a straight walk must not turn. NaN (fails) when a command's
    every run fell or no command moves; the zero command is the standstill check's.
    """
    worst, which = -math.inf, ''
    for case in scenario.commands:
        speed, turn = math.hypot(case.vx_m_s, case.vy_m_s), abs(case.wz_rad_s)
        if speed == 0.0 and turn == 0.0:
            continue
        row = per_command.get(case.name, {})
        lin = row.get('lin_vel_error_m_s', math.nan)
        yaw = row.get('yaw_rate_mae_rad_s', math.nan)
        lin, yaw = (math.nan if v is None else v for v in (lin, yaw))
        if math.isnan(lin) or math.isnan(yaw):
            return math.nan, case.name
        ratio = max(lin / max(speed, targets.follow_speed_floor_m_s),
                    yaw / max(turn, targets.follow_yaw_rate_floor_rad_s))
        if ratio > worst:
            worst, which = ratio, case.name
    return (worst, which) if which else (math.nan, 'no moving command')


def scenario_summary(scenario: Scenario, records: Sequence[RunRecord],
                     targets: Targets) -> Dict[str, Any]:
    """Return a scenario's figures and checks from its run records."""
    runs = len(records)
    falls = sum(r.fell for r in records)
    pushes = sum(len(r.push_times_s) for r in records)
    ok = [r for r in records if not r.fell]
    per_command: Dict[str, Dict[str, Any]] = {}
    for case in scenario.commands:
        mine = [r for r in records if r.command == case.name]
        good = [r.metrics for r in mine if not r.fell]
        per_command[case.name] = {'runs': len(mine), 'falls': sum(r.fell for r in mine),
                                  **aggregate(good, COMMAND_KEYS)}
    lin = [c['lin_vel_error_m_s'] for c in per_command.values()]
    yaw = [c['yaw_rate_mae_rad_s'] for c in per_command.values()]
    # a command whose every run fell has NaN errors: the scenario's mean and worst are NaN too
    tracking = {
        'lin_vel_error_mean_m_s': float(np.mean(lin)),
        'lin_vel_error_worst_m_s': float(np.max(lin)),
        'yaw_rate_error_mean_rad_s': float(np.mean(yaw)),
        'yaw_rate_error_worst_rad_s': float(np.max(yaw)),
    }
    quality = aggregate([r.metrics for r in ok], QUALITY_KEYS)
    if all('torque_limit_share_other' not in r.metrics for r in records):
        quality.pop('torque_limit_share_other')  # every joint is in a named group
    peak = max(ok, key=lambda r: r.metrics['peak_joint_speed_ratio'], default=None)
    quality['peak_joint_speed_joint'] = peak.metrics['peak_joint_speed_joint'] if peak else ''
    zero = [r.metrics for r in ok if r.command == 'stand']
    quality['steps_per_10s_zero_command'] = aggregate(zero, ('steps_per_10s',))['steps_per_10s']
    quality['drift_zero_command_m_s'] = aggregate(zero, ('planar_drift_m_s',))[
        'planar_drift_m_s']
    phases = [p for r in records for p in r.push_phases]
    out: Dict[str, Any] = {
        'family': scenario.family, 'description': scenario.description,
        'runs': runs, 'falls': falls, 'fall_rate': falls / runs if runs else math.nan,
        'fall_times_s': [r.fall_time_s for r in records if r.fell],
        'faults': sorted({r.fault for r in records if r.fault}),
        'tracking': tracking, 'quality': quality, 'per_command': per_command,
    }
    if scenario.pushes is not None:
        out['push_events'] = pushes
        out['falls_per_push_event'] = falls / pushes if pushes else math.nan
        out['push_phase_quartile_counts'] = np.histogram(phases, bins=4, range=(0.0, 1.0))[
            0].tolist()
        if scenario.loop.idle_stand_after_s > 0.0:
            out['pushes_during_idle_stand'] = sum(
                sum(r.push_idle_standing) for r in records)
        # the episode ends at a fall: its last push is the one that felled the robot
        felled = [r.push_phases[-1] for r in records if r.fell and r.push_phases]
        out['fall_push_phase_quartile_counts'] = np.histogram(
            felled, bins=4, range=(0.0, 1.0))[0].tolist()
    if scenario.model.slope_deg:
        speeds = [r.metrics.get('along_slope_speed_m_s', math.nan) for r in records]
        out['along_slope_speed_m_s'] = [None if r.fell else s for r, s in zip(records, speeds)]
        out['slope_command_m_s'] = scenario.commands[0].vx_m_s
    checks = []
    for name in scenario.checks:
        if name == 'no_falls':
            checks.append(_check('falls', falls, '== 0', falls == 0, f'of {runs} episodes'))
        elif name == 'push_falls':
            rate = falls / pushes if pushes else math.nan
            limit = targets.push_fall_rate_for(scenario.pushes.speed_m_s)
            checks.append(_check('falls_per_push_event', rate, f'<= {limit:g}', rate <= limit,
                                 f'{falls} falls in {pushes} push events'))
        elif name == 'tracking':
            checks.append(_check('lin_vel_error_mean_m_s', tracking['lin_vel_error_mean_m_s'],
                                 f'<= {targets.tracking_mean_m_s:g}',
                                 tracking['lin_vel_error_mean_m_s'] <= targets.tracking_mean_m_s,
                                 'mean over the commands'))
            checks.append(_check('lin_vel_error_worst_m_s', tracking['lin_vel_error_worst_m_s'],
                                 f'<= {targets.tracking_worst_m_s:g}',
                                 tracking['lin_vel_error_worst_m_s']
                                 <= targets.tracking_worst_m_s, 'worst command'))
            checks.append(_check('yaw_rate_error_worst_rad_s',
                                 tracking['yaw_rate_error_worst_rad_s'],
                                 f'<= {targets.yaw_rate_worst_rad_s:g}',
                                 tracking['yaw_rate_error_worst_rad_s']
                                 <= targets.yaw_rate_worst_rad_s, 'worst command'))
        elif name == 'follows':
            ratio, which = _follow_ratio(scenario, per_command, targets)
            checks.append(_check('command_error_ratio_worst', ratio,
                                 f'<= {targets.follow_fraction:g}',
                                 ratio <= targets.follow_fraction,
                                 f'|error| / |command| of the moving commands, worst: {which}'))
        elif name == 'rise':
            rise = per_command.get(RISE_COMMAND, {}).get('rise_time_s', math.nan)
            checks.append(_check('rise_time_s', rise, f'<= {targets.rise_time_s:g}',
                                 rise <= targets.rise_time_s,
                                 f'{RISE_COMMAND} to half its speed (gait-averaged), worst run'))
        elif name == 'joint_speed':
            value = quality['peak_joint_speed_ratio']
            checks.append(_check('peak_joint_speed_ratio', value,
                                 f'<= {targets.joint_speed_ratio:g}',
                                 value <= targets.joint_speed_ratio,
                                 '|joint speed| / URDF limit, '
                                 f'{quality["peak_joint_speed_joint"]}'))
        elif name == 'slope_speed':
            command = scenario.commands[0].vx_m_s
            errors = [abs(s - command) if s is not None and not math.isnan(s) else math.inf
                      for s in out['along_slope_speed_m_s']]
            worst = max(errors) if errors else math.nan
            checks.append(_check('along_slope_speed_error_m_s', worst,
                                 f'<= {targets.slope_speed_error_m_s:g}',
                                 worst <= targets.slope_speed_error_m_s,
                                 f'|speed along the slope - {command:g}|, worst run'))
        elif name == 'standstill':
            steps = _worst([r.metrics for r in ok], 'steps_per_10s')
            drift = _worst([r.metrics for r in ok], 'planar_drift_m_s')
            checks.append(_check('steps_per_10s', steps,
                                 f'<= {targets.standstill_steps_per_10s:g}',
                                 steps <= targets.standstill_steps_per_10s,
                                 'foot lift-offs at zero command, worst run'))
            checks.append(_check('drift_m_s', drift, f'<= {targets.standstill_drift_m_s:g}',
                                 drift <= targets.standstill_drift_m_s,
                                 'planar drift at zero command, worst run'))
    out['checks'] = checks
    out['passed'] = all(c['passed'] for c in checks)
    return out


def dumps_report(report: Mapping[str, Any]) -> str:
    """Return the report as JSON text: indented, but the runs' table one line per run."""
    head = {k: v for k, v in report.items() if k != 'runs'}
    text = json.dumps(head, indent=1)
    runs = report.get('runs', {'columns': [], 'rows': []})
    rows = ',\n'.join('   ' + json.dumps(row) for row in runs['rows'])
    return (text[:-2] + ',\n "runs": {\n  "columns": ' + json.dumps(runs['columns'])
            + ',\n  "rows": [\n' + rows + '\n  ]\n }\n}\n')


def _significant(value: Any, digits: int = 5) -> Any:
    """Return floats (also inside lists) rounded to ``digits`` significant digits."""
    if isinstance(value, float) and math.isfinite(value) and value != 0.0:
        return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))
    if isinstance(value, list):
        return [_significant(v, digits) for v in value]
    return value


def runs_table(records: Sequence[RunRecord]) -> Dict[str, Any]:
    """Return every run as a table: ``columns`` and one row per run (floats to 5 digits)."""
    meta = ('scenario', 'command', 'seed', 'fell', 'fall_time_s', 'fault', 'push_times_s',
            'push_phases', 'wall_s')
    metric_keys = list(dict.fromkeys(k for r in records for k in r.metrics))
    rows = [[_significant(getattr(r, k)) for k in meta]
            + [_significant(r.metrics.get(k, math.nan)) for k in metric_keys] for r in records]
    return {'columns': list(meta) + metric_keys, 'rows': rows}


def jsonable(value: Any) -> Any:
    """Return ``value`` with NaN and infinities as None and tuples as lists (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (np.floating, np.integer)):
        return jsonable(value.item())
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def scenario_config(scenario: Scenario) -> Dict[str, Any]:
    """Return a scenario's settings for the report (commands by name)."""
    config = asdict(scenario)
    config['commands'] = [c.name for c in scenario.commands]
    return config


def build_report(scenarios: Sequence[Scenario], records: Sequence[RunRecord], targets: Targets,
                 skipped: Mapping[str, str], meta: Mapping[str, Any]) -> Dict[str, Any]:
    """Return the whole report: ``meta``, methods, targets, a summary and every scenario."""
    per_scenario: Dict[str, Any] = {}
    for scenario in scenarios:
        mine = [r for r in records if r.scenario == scenario.name]
        per_scenario[scenario.name] = {**scenario_summary(scenario, mine, targets),
                                       'config': scenario_config(scenario)}
    failed: List[str] = [n for n, s in per_scenario.items() if not s['passed']]
    summary = {
        'scenarios': len(per_scenario), 'passed': len(per_scenario) - len(failed),
        'failed': failed, 'skipped': dict(skipped),
        'episodes': len(records), 'falls': sum(r.fell for r in records),
        'simulated_s': float(sum(s.episode_s * s.runs for s in scenarios)),
    }
    return jsonable({**meta, 'methods': METHODS, 'targets': asdict(targets), 'summary': summary,
                     'scenarios': per_scenario, 'runs': runs_table(records)})


def _reason(check: Mapping[str, Any]) -> str:
    value = check['value']
    shown = 'n/a' if value is None else (f'{value:.3g}' if isinstance(value, float)
                                         else str(value))
    note = f', {check["note"]}' if check.get('note') else ''
    return f'{check["check"]} {shown} (target {check["target"]}{note})'


def targets_met(report: Mapping[str, Any]) -> Dict[str, Any]:
    """
    Return whether a report (:func:`build_report`) meets every target, and why not.

    Keys: ``all_met`` (every scenario run passed its checks; a report without scenarios meets
    nothing), ``passed`` and ``scenarios`` (counts), ``failed`` (scenario -> the checks it
    missed, each as ``'<check> <value> (target <bound>, <note>)'``) and ``skipped`` (scenarios
    that do not apply to the policy, with why; they count neither way).
    """
    rows = report['scenarios']
    failed = {name: [_reason(c) for c in row['checks'] if not c['passed']]
              for name, row in rows.items() if not row['passed']}
    return {'all_met': bool(rows) and not failed, 'passed': len(rows) - len(failed),
            'scenarios': len(rows), 'failed': failed,
            'skipped': dict(report['summary'].get('skipped', {}))}
