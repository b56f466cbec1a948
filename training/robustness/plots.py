"""
Figures of a robustness report, readable at a glance.

* ``summary.png``: one row per scenario: falls, the checked figures against their targets, and
  PASS / FAIL;
* ``falls.png``: fall rate per scenario (per push event for push scenarios);
* ``tracking.png``: velocity and yaw rate errors per scenario against the targets, and the
  speed along the slope against the command;
* ``quality.png``: share of samples at the torque limit per joint group, peak joint speed
  against the URDF limit, steps per 10 s at zero command, cost of transport;
* ``speed_traces.png``: forward speed (gait-averaged) over time for the 0.5 m/s command of
  each scenario (first seed).
"""

import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
from training.robustness.metrics import JOINT_GROUP_KEYS, moving_average
from training.robustness.runner import RunRecord

__all__ = ['plot_report']

PASS_COLOR = '#3a9d4a'
FAIL_COLOR = '#d0443c'
NONE_COLOR = '#9a9a9a'
SHORT = {'lin_vel_error_mean_m_s': 'vel err mean', 'lin_vel_error_worst_m_s': 'worst',
         'yaw_rate_error_worst_rad_s': 'yaw err worst', 'rise_time_s': 'rise',
         'peak_joint_speed_ratio': 'joint speed/limit', 'falls_per_push_event': 'falls/push',
         'along_slope_speed_error_m_s': '|slope speed - cmd|',
         'steps_per_10s': 'steps per 10 s', 'drift_m_s': 'drift'}
"""Short labels of the checks in the summary table."""


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return 'n/a'
    if isinstance(value, float):
        return f'{value:.3g}' if abs(value) < 100 else f'{value:.0f}'
    return str(value)


def _falls_text(row: Mapping[str, Any]) -> str:
    if 'push_events' in row:
        return f'{row["falls"]} / {row["push_events"]} pushes'
    return f'{row["falls"]} / {row["runs"]} runs'


def _plt():
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    return plt


def plot_summary(report: Mapping[str, Any], path: Path) -> Path:
    """Save the pass/fail table of every scenario."""
    plt = _plt()
    rows = report['scenarios']
    names = list(rows)
    cells, colors = [], []
    for name in names:
        row = rows[name]
        figures = ';  '.join(f'{SHORT.get(c["check"], c["check"])} {_fmt(c["value"])} '
                             f'({c["target"]})' for c in row['checks'] if c['check'] != 'falls')
        if not figures:
            tracking = row['tracking']
            figures = (f'(lin err {_fmt(tracking["lin_vel_error_mean_m_s"])} m/s, yaw err '
                       f'{_fmt(tracking["yaw_rate_error_mean_rad_s"])} rad/s)')
        result = 'PASS' if row['passed'] else 'FAIL'
        cells.append([name, row['description'][:78], _falls_text(row), figures, result])
        colors.append(['white'] * 4 + [PASS_COLOR if row['passed'] else FAIL_COLOR])
    for name, why in report['summary'].get('skipped', {}).items():
        cells.append([name, why[:78], '-', '-', 'skipped'])
        colors.append(['white'] * 4 + [NONE_COLOR])
    fig, ax = plt.subplots(figsize=(20, 0.22 * len(cells) + 0.8))
    ax.axis('off')
    table = ax.table(cellText=cells, cellColours=colors,
                     colLabels=['scenario', 'what differs', 'falls',
                                'checked figures (target) [m/s, rad/s, s]', 'result'],
                     colWidths=[0.1, 0.33, 0.07, 0.46, 0.04], loc='upper center',
                     cellLoc='left')
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    table.scale(1.0, 1.15)
    summary = report['summary']
    ax.set_title(f'Robustness of {Path(str(report.get("policy", ""))).name}: '
                 f'{summary["passed"]} of {summary["scenarios"]} scenarios pass '
                 f'({summary["falls"]} falls in {summary["episodes"]} episodes)', fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_falls(report: Mapping[str, Any], path: Path) -> Path:
    """Save the fall rate per scenario as horizontal bars (red: over its target)."""
    plt = _plt()
    rows = report['scenarios']
    names = list(rows)[::-1]
    rates, colors, labels = [], [], []
    for name in names:
        row = rows[name]
        rate = row.get('falls_per_push_event', row['fall_rate'])
        rates.append(100.0 * (rate or 0.0))
        fall_checks = [c for c in row['checks'] if c['check'].startswith('falls')]
        ok = all(c['passed'] for c in fall_checks)
        colors.append(PASS_COLOR if ok else FAIL_COLOR)
        labels.append(_falls_text(row))
    fig, ax = plt.subplots(figsize=(9, 0.25 * len(names) + 1.5))
    bars = ax.barh(names, rates, color=colors)
    for bar, label in zip(bars, labels):
        ax.text(bar.get_width() + 1, bar.get_y() + bar.get_height() / 2, label, va='center',
                fontsize=7)
    ax.axvline(2.0, color='k', ls=':', lw=0.8)
    ax.set_xlim(0, 119)
    ax.set_xlabel('falls [% of episodes; push scenarios: % of push events] (dotted: 2 %)')
    ax.set_title('Falls per scenario (red: above the target)')
    ax.tick_params(axis='y', labelsize=7)
    ax.grid(axis='x', alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_tracking(report: Mapping[str, Any], path: Path) -> Path:
    """Save the tracking errors per scenario and the speeds along the slopes."""
    plt = _plt()
    rows = {n: r for n, r in report['scenarios'].items() if r['family'] != 'push'}
    names = list(rows)[::-1]
    targets = report['targets']
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(14, 0.25 * len(names) + 1.8),
                                  gridspec_kw={'width_ratios': [2.2, 1]})
    y = np.arange(len(names))
    series = (('lin_vel_error_mean_m_s', 'planar velocity error, mean of commands [m/s]',
               '#4a78b5'),
              ('lin_vel_error_worst_m_s', 'planar velocity error, worst command [m/s]',
               '#9cc0e8'),
              ('yaw_rate_error_worst_rad_s', 'yaw rate error, worst command [rad/s]', '#e39b3c'))
    for k, (key, label, color) in enumerate(series):
        values = [rows[n]['tracking'][key] for n in names]
        shown = [v if v is not None else 0.0 for v in values]
        ax.barh(y + (k - 1) * 0.27, shown, height=0.26, color=color, label=label)
        if k == 0:
            for yy, v in zip(y, values):
                if v is None:
                    ax.text(0.005, yy, 'every run of a command fell', fontsize=6, va='center',
                            color=FAIL_COLOR)
    ax.axvline(targets['tracking_mean_m_s'], color='k', ls=':', lw=0.8)
    ax.axvline(targets['tracking_worst_m_s'], color='k', ls='--', lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels(names, fontsize=7)
    ax.set_xlim(0, 0.6)
    ax.set_xlabel('error (dotted: 0.10 mean target, dashed: 0.15 worst-command target); '
                  'bars cut at 0.6')
    ax.set_title('Velocity tracking per scenario (runs without a fall)')
    ax.legend(fontsize=7, loc='lower right')
    ax.grid(axis='x', alpha=0.3)

    slopes = {n: r for n, r in report['scenarios'].items() if 'along_slope_speed_m_s' in r}
    tol = targets['slope_speed_error_m_s']
    for i, (name, row) in enumerate(slopes.items()):
        speeds = [s for s in row['along_slope_speed_m_s'] if s is not None]
        command = row['slope_command_m_s']
        if speeds:
            ax2.plot([i] * len(speeds), speeds, 'o', color='#4a78b5', ms=4)
            ax2.plot([i - 0.3, i + 0.3], [np.mean(speeds)] * 2, 'k-', lw=1.5)
        fell = sum(s is None for s in row['along_slope_speed_m_s'])
        if fell:
            ax2.text(i, command, f'{fell} of {len(row["along_slope_speed_m_s"])}\nruns fell',
                     ha='center', fontsize=7, color=FAIL_COLOR)
        ax2.axhspan(command - tol, command + tol, xmin=(i + 0.1) / max(len(slopes), 1),
                    xmax=(i + 0.9) / max(len(slopes), 1), color=PASS_COLOR, alpha=0.2)
    ax2.set_xticks(range(len(slopes)))
    ax2.set_xticklabels(list(slopes), rotation=30, ha='right', fontsize=7)
    ax2.set_xlim(-0.5, len(slopes) - 0.5)
    ax2.set_ylabel('speed along the slope [m/s] (command 0.5; green: +/-0.15)')
    ax2.set_title('Slopes: runs (dots) and mean (bar)')
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_quality(report: Mapping[str, Any], path: Path) -> Path:
    """Save torque-limit shares, peak joint speeds, zero-command steps and cost of transport."""
    plt = _plt()
    rows = report['scenarios']
    names = list(rows)
    groups = [g for g, _ in JOINT_GROUP_KEYS]
    share = np.array([[rows[n]['quality'].get(f'torque_limit_share_{g}') for g in groups]
                      for n in names], dtype=float) * 100.0
    fig, axes = plt.subplots(1, 4, figsize=(17, 0.25 * len(names) + 1.8),
                             gridspec_kw={'width_ratios': [1.4, 1, 1, 1]})
    ax = axes[0]
    image = ax.imshow(np.nan_to_num(share, nan=0.0), aspect='auto', cmap='Reds', vmin=0,
                      vmax=max(5.0, float(np.nanmax(share)) if np.isfinite(share).any()
                               else 5.0))
    for i in range(len(names)):
        for j in range(len(groups)):
            value = share[i, j]
            ax.text(j, i, 'n/a' if not np.isfinite(value) else f'{value:.1f}', ha='center',
                    va='center', fontsize=6)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, fontsize=8)
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names, fontsize=7)
    ax.set_title('samples at the torque limit [%]', fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.05)

    def bars(ax, key: str, title: str, line: Optional[float] = None) -> None:
        # row i of every panel is scenario i, top to bottom, as in the heatmap
        values = [rows[n]['quality'].get(key) for n in names]
        shown = [v if v is not None else 0.0 for v in values]
        colors = [NONE_COLOR if v is None else
                  (FAIL_COLOR if line is not None and v > line else '#4a78b5') for v in values]
        ax.barh(np.arange(len(names)), shown, color=colors, height=0.7)
        for i, v in enumerate(values):
            if v is None:
                ax.text(0.0, i, ' n/a', va='center', fontsize=6, color=NONE_COLOR)
        if line is not None:
            ax.axvline(line, color='k', ls='--', lw=0.8)
        ax.set_ylim(len(names) - 0.5, -0.5)
        ax.set_yticks(np.arange(len(names)))
        ax.set_yticklabels([])
        ax.set_title(title, fontsize=9)
        ax.grid(axis='x', alpha=0.3)

    bars(axes[1], 'peak_joint_speed_ratio', 'peak |joint speed| / URDF limit', line=1.0)
    bars(axes[2], 'steps_per_10s_zero_command', 'steps per 10 s at zero command (target 0)',
         line=0.0)
    bars(axes[3], 'cost_of_transport', 'cost of transport, walking commands [-]')
    fig.suptitle('Motion quality per scenario (runs without a fall; n/a: every run fell, or no '
                 'zero-command / walking run)', fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_speed_traces(records: Sequence[RunRecord], report: Mapping[str, Any], path: Path,
                      command: str = 'forward_0.5') -> Optional[Path]:
    """Save the gait-averaged forward speed over time of ``command`` (seed 0) per scenario."""
    plt = _plt()
    shown: List[RunRecord] = [r for r in records if r.command == command and r.trace]
    if not shown:
        return None
    cols = 6
    rows_n = int(math.ceil(len(shown) / cols))
    fig, axes = plt.subplots(rows_n, cols, figsize=(2.6 * cols, 1.9 * rows_n), squeeze=False,
                             sharey=True)
    window = 40  # one 0.8 s gait period at 50 Hz
    for ax, record in zip(axes.flat, shown):
        t = np.asarray(record.trace['t'])
        vx = np.asarray(record.trace['vx'])
        ax.plot(t, moving_average(vx, window), lw=1.0, color='#4a78b5')
        ax.plot(t, record.trace['cvx'], 'k--', lw=0.8)
        passed = report['scenarios'][record.scenario]['passed']
        ax.set_title(record.scenario + (' (fell)' if record.fell else ''), fontsize=8,
                     color=PASS_COLOR if passed else FAIL_COLOR)
        ax.set_ylim(-0.4, 1.2)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(shown):]:
        ax.axis('off')
    fig.suptitle(f'{command}: forward speed averaged over a gait period [m/s] vs time [s] '
                 '(dashed: command; title red: scenario fails a check)', fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_report(report: Mapping[str, Any], records: Sequence[RunRecord],
                out_dir: Path) -> Dict[str, str]:
    """Save every figure into ``out_dir``; return their paths by name."""
    out = {
        'summary': plot_summary(report, out_dir / 'summary.png'),
        'falls': plot_falls(report, out_dir / 'falls.png'),
        'tracking': plot_tracking(report, out_dir / 'tracking.png'),
        'quality': plot_quality(report, out_dir / 'quality.png'),
        'speed_traces': plot_speed_traces(records, report, out_dir / 'speed_traces.png'),
    }
    return {k: str(v) for k, v in out.items() if v is not None}
