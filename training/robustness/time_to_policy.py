"""
Time to policy: the earliest snapshot of a training run that meets every robustness target.

Usage (``--help`` lists every option)::

    # a run trained with --time-budget-min and --snapshot-interval-min (snapshots/ in its folder)
    python -m training.robustness.time_to_policy runs/real_world --suite full --workers 12
    # while training runs: evaluate each snapshot as it appears, until training's final export
    # (or --stop-file) is written, or --timeout-min has passed
    python -m training.robustness.time_to_policy runs/real_world --watch --timeout-min 30

Every snapshot (``snapshots/<run>_it<iteration>.yaml`` + ``.onnx``, its training wall time in
the contract's provenance) goes through the robustness suite
(:func:`training.robustness.cli.run_robustness`, ``--workers`` processes), oldest first, and
is judged by the suite's own checks (:func:`training.robustness.report.targets_met`).  Written
into ``--out`` (default ``<run folder>/time_to_policy``) after each snapshot:

* ``reports/<snapshot>.json``: the snapshot's robustness report (reused when the tool runs
  again on the same snapshot with the same suite and targets);
* ``time_to_policy.json``: every snapshot with its training time, scenarios passed, the checks
  it missed, the scenarios skipped as not applying to the policy, and the earliest snapshot that
  meets every target (with the earlier snapshots that could not be evaluated, if any: then it
  is not proven the earliest);
* ``time_to_policy.png``: scenarios passed against training minutes;
* ``time_to_policy.md``: the same as a table for ``benchmarks/RESULTS.md``.

Exit status: 0 when a snapshot meets every target, 1 when none does.
"""

from dataclasses import asdict, dataclass, field
import datetime
import hashlib
import json
import math
import os
from pathlib import Path
import re
import sys
import time
from typing import Any, Callable, Dict, List, Literal, Optional, Sequence, Tuple

from humanoid_rl_ros.core.contract import read_contract
from humanoid_rl_ros.core.provenance import git_commit
from training.robustness.cli import run_robustness
from training.robustness.report import dumps_report, jsonable, targets_met
from training.robustness.scenarios import suite, Targets
import tyro
import yaml

__all__ = ['find_snapshots', 'main', 'Snapshot', 'snapshot_folder', 'time_to_policy',
           'TimeToPolicyCommand']

REPO_ROOT = Path(__file__).resolve().parents[2]
REPORT_NAME = 'time_to_policy'
ITERATION_IN_NAME = re.compile(r'_it(\d+)$')


@dataclass
class TimeToPolicyCommand:
    """Command line of ``python -m training.robustness.time_to_policy``."""

    path: tyro.conf.Positional[Path]
    """A run folder (its snapshots/ is read; it may not exist yet with --watch) or a folder
    holding snapshot policies (<name>.yaml + <name>.onnx)."""
    out: Optional[Path] = None
    """Folder receiving the reports; None: <run folder>/time_to_policy."""
    suite: Literal['full', 'ci'] = 'full'
    """Robustness suite each snapshot goes through (see python -m training.robustness)."""
    workers: int = 2
    """Worker processes of the suite (each runs whole episodes on one core)."""
    only: Tuple[str, ...] = ()
    """Run only these scenarios of the suite (by name); empty: all."""
    robot: Optional[Path] = None
    """Robot folder or robot.yaml; None: each contract's robot, under models/robots/."""
    targets: Targets = field(default_factory=Targets)
    """What a robust policy achieves."""
    watch: bool = False
    """Keep polling for new snapshots while training writes them, until the stop file is
    written or --timeout-min has passed; the snapshots present then are evaluated too."""
    stop_file: Optional[Path] = None
    """With --watch: stop once this file is written: created or changed after the watch began,
    or already there then but written after this process started; None: the run's final
    export, <export_dir>/<run_name>.yaml of its config.yaml."""
    timeout_min: float = 0.0
    """Start no evaluation after this many minutes [min]; the snapshots left are listed as
    pending. 0: no limit."""
    poll_s: float = 5.0
    """With --watch: seconds between looks for new snapshots [s]."""
    settle_s: float = 2.0
    """With --watch: a snapshot is read once its contract is this old [s] (being written)."""
    previous: Tuple[Path, ...] = ()
    """time_to_policy.json files of earlier commands of the same run (training resumed from a
    checkpoint): their evaluated snapshots are included without running them again. A snapshot
    of the same name with another ONNX file (a resume from an older checkpoint) is evaluated,
    and both are listed."""


@dataclass(frozen=True)
class Snapshot:
    """One snapshot policy of a run."""

    name: str
    """File stem (``<run>_it<iteration>``)."""
    contract_path: Path
    """Its contract (``<name>.yaml``, the ONNX beside it)."""
    iteration: int
    """PPO iterations trained when it was exported."""
    train_wall_time_s: Optional[float]
    """Training wall time when it was exported [s] (from the provenance)."""
    env_steps: Optional[int]
    """Environment steps trained when it was exported."""
    onnx_sha256: Optional[str] = None
    """SHA-256 of its ONNX file (hex)."""
    startup_s: Optional[float] = None
    """The part of the training wall time spent in the first iteration of each training
    process (kernel compilation, torch.compile, graph capture) [s] (from the provenance)."""


def snapshot_folder(path: Path) -> Path:
    """Return the folder of snapshots of ``path``: a run folder's snapshots/, or ``path``."""
    path = Path(path)
    if path.name == 'snapshots' or not path.exists():
        return path if path.name == 'snapshots' else path / 'snapshots'
    if (path / 'snapshots').is_dir() or (path / 'config.yaml').is_file():
        return path / 'snapshots'
    return path


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_snapshot(contract_path: Path) -> Snapshot:
    """Return the snapshot of a contract file (raises if it is unreadable or incomplete)."""
    contract = read_contract(contract_path)
    if not contract.onnx_path(contract_path).is_file():
        raise FileNotFoundError(f'no ONNX file beside {contract_path}')
    prov = contract.provenance or {}
    match = ITERATION_IN_NAME.search(contract_path.stem)
    iteration = prov.get('iterations', int(match.group(1)) if match else 0)
    wall = prov.get('train_wall_time_s')
    steps = prov.get('env_steps')
    startup = prov.get('train_startup_s')
    return Snapshot(contract_path.stem, contract_path.resolve(), int(iteration),
                    None if wall is None else float(wall), None if steps is None else int(steps),
                    _sha256(contract.onnx_path(contract_path)),
                    None if startup is None else float(startup))


def find_snapshots(folder: Path, settle_s: float = 0.0,
                   known: Optional[Dict[Tuple[str, float], Snapshot]] = None) -> List[Snapshot]:
    """
    Return the readable snapshots of ``folder``, by iteration.

    A contract written less than ``settle_s`` ago, or one that does not read (still being
    written: the ONNX is written first, then its YAML copy), is left for a later look.
    ``known`` caches the snapshots already read, by (name, modification time).
    """
    known = {} if known is None else known
    found: List[Snapshot] = []
    now = time.time()
    for path in sorted(Path(folder).glob('*.yaml')) if Path(folder).is_dir() else []:
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            continue
        key = (path.name, mtime)
        if key not in known:
            if now - mtime < settle_s:
                continue
            try:
                known[key] = read_snapshot(path)
            except Exception:  # noqa: B902 - not complete yet (or not a policy): look again
                continue
        found.append(known[key])
    return sorted(found, key=lambda s: (s.iteration, s.name))


FileState = Tuple[int, int, int]
"""A file's modification time [ns], size [bytes] and inode."""


def file_state(path: Path) -> Optional[FileState]:
    """Return the state of the file at ``path``; None when there is none."""
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino) if Path(path).is_file() else None


def process_start_wall_s() -> Optional[float]:
    """Return when this process started (Unix time [s], from Linux's /proc); None if unknown."""
    try:
        fields = Path('/proc/self/stat').read_text().rsplit(')', 1)[1].split()
        boot_s = next(int(line.split()[1]) for line in Path('/proc/stat').read_text().splitlines()
                      if line.startswith('btime '))
        return boot_s + int(fields[19]) / os.sysconf('SC_CLK_TCK')  # field 22: starttime
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def stop_file_written(path: Path, at_start: Optional[FileState], since_wall_s: float) -> bool:
    """
    Return whether the stop file ``path`` was written for this watch.

    It was when it is there now and was not at the start of the watch (``at_start`` None), or
    has changed since (modification time, size or inode: also a copy keeping an older time),
    or it was already there then but written at or after ``since_wall_s`` (when this process
    started, less 1 s of clock resolution): a training that stopped while the watcher was
    still starting up.
    """
    now = file_state(path)
    if now is None:
        return False
    return at_start is None or now != at_start or now[0] >= (since_wall_s - 1.0) * 1e9


def final_export_of(run_folder: Path) -> Optional[Path]:
    """Return the final export a run's config.yaml names (``<export_dir>/<run_name>.yaml``)."""
    config = Path(run_folder) / 'config.yaml'
    if not config.is_file():
        return None
    try:
        data = yaml.safe_load(config.read_text()) or {}
        return Path(data['export_dir']) / f'{data["run_name"]}.yaml'
    except (yaml.YAMLError, KeyError, TypeError):
        return None


def _expected_scenarios(suite_name: str, only: Sequence[str]) -> List[str]:
    return [s.name for s in suite(suite_name) if not only or s.name in only]


def _reusable(report: Dict[str, Any], cmd: TimeToPolicyCommand, sha256: str) -> bool:
    """Return whether a saved report is of this snapshot, suite, scenarios and targets."""
    names = set(report.get('scenarios', {})) | set(report.get('summary', {}).get('skipped', {}))
    return (report.get('snapshot', {}).get('onnx_sha256') == sha256
            and report.get('suite') == cmd.suite
            and report.get('targets') == jsonable(asdict(cmd.targets))
            and names == set(_expected_scenarios(cmd.suite, cmd.only)))


def _minutes(seconds: Optional[float]) -> Optional[float]:
    return None if seconds is None else round(seconds / 60.0, 2)


def _base_entry(snap: Snapshot) -> Dict[str, Any]:
    after = None if snap.train_wall_time_s is None or snap.startup_s is None else \
        snap.train_wall_time_s - snap.startup_s
    return {'name': snap.name, 'iteration': snap.iteration,
            'train_wall_time_s': snap.train_wall_time_s,
            'train_wall_time_min': _minutes(snap.train_wall_time_s),
            'startup_s': snap.startup_s, 'after_startup_min': _minutes(after),
            'env_steps': snap.env_steps, 'contract': str(snap.contract_path),
            'onnx_sha256': snap.onnx_sha256}


def _key(entry: Dict[str, Any]) -> Tuple[str, Optional[str]]:
    """Return what tells snapshots apart: the name and the ONNX file's SHA-256."""
    return entry['name'], entry.get('onnx_sha256')


def _order(entry: Dict[str, Any]) -> Tuple[int, str, int]:
    """Sort by iteration, then name; of two of one name, the earlier command's first."""
    return entry['iteration'], entry['name'], 0 if 'from' in entry else 1


def evaluate_snapshot(snap: Snapshot, cmd: TimeToPolicyCommand, out: Path,
                      progress: Callable[[str], None] = print,
                      report_name: Optional[str] = None) -> Dict[str, Any]:
    """
    Run (or reuse) the suite on one snapshot; return its entry of the time-to-policy report.

    The robustness report is ``<out>/reports/<report_name or snapshot name>.json``.
    """
    entry = _base_entry(snap)
    report_path = out / 'reports' / f'{report_name or snap.name}.json'
    entry['report'] = os.path.relpath(report_path, out)
    try:
        sha256 = snap.onnx_sha256 or _sha256(
            read_contract(snap.contract_path).onnx_path(snap.contract_path))
        entry['onnx_sha256'] = sha256
        report = None
        if report_path.is_file():
            saved = json.loads(report_path.read_text())
            report = saved if _reusable(saved, cmd, sha256) else None
        if report is None:
            report = run_robustness(snap.contract_path, None, cmd.suite, cmd.workers, cmd.only,
                                    cmd.robot, cmd.targets, plots=False, progress=None)
            report['snapshot'] = {**_base_entry(snap), 'onnx_sha256': sha256}
            report_path.parent.mkdir(parents=True, exist_ok=True)
            report_path.write_text(dumps_report(report))
    except Exception as exc:  # noqa: B902 - one broken snapshot does not stop the others
        progress(f'[time_to_policy] {snap.name}: evaluation failed: {exc}')
        return {**entry, 'status': 'error', 'error': f'{type(exc).__name__}: {exc}'}
    summary = report['summary']
    return {**entry, 'status': 'evaluated', **targets_met(report),
            'falls': summary['falls'], 'episodes': summary['episodes'],
            'eval_wall_time_s': report.get('wall_time_s')}


def _previous_entries(paths: Sequence[Path], cmd: TimeToPolicyCommand) -> List[Dict[str, Any]]:
    """Return the evaluated entries of earlier reports (same suite, scenarios and targets)."""
    entries: List[Dict[str, Any]] = []
    for path in paths:
        data = json.loads(Path(path).read_text())
        if (data.get('suite') != cmd.suite or data.get('targets') != jsonable(asdict(cmd.targets))
                or list(data.get('only', [])) != list(cmd.only)):
            raise SystemExit(f'--previous {path}: made with another suite, scenarios or targets '
                             f'({data.get("suite")}, only {data.get("only")}); give the same')
        entries += [{**e, 'from': str(path)} for e in data['snapshots']
                    if e.get('status') == 'evaluated']
    return entries


def summarize(entries: Sequence[Dict[str, Any]]) -> Dict[str, Any]:
    """
    Return the earliest entry meeting every target and the best one (most scenarios passed).

    Also the counts, the scenarios skipped as not applying to the policy (name -> why, over
    every evaluated snapshot), and ``earlier_not_evaluated``: the snapshots before the earliest
    that failed to run or are pending (while there are any, it is not proven the earliest).
    """
    ordered = sorted(entries, key=_order)
    done = [e for e in ordered if e['status'] == 'evaluated']
    earliest = next((e for e in done if e['all_met']), None)
    best = max(done, key=lambda e: (e['passed'], -e['iteration']), default=None)
    keys = ('name', 'iteration', 'train_wall_time_s', 'train_wall_time_min', 'startup_s',
            'after_startup_min', 'env_steps', 'passed', 'scenarios', 'failed', 'onnx_sha256')
    skipped: Dict[str, str] = {}
    for e in done:
        skipped.update(e.get('skipped', {}))
    earlier = [] if earliest is None else [
        {'name': e['name'], 'iteration': e['iteration'], 'status': e['status']}
        for e in ordered[:next(i for i, e in enumerate(ordered) if e is earliest)]
        if e['status'] != 'evaluated']
    return {'earliest_all_met': None if earliest is None else {k: earliest.get(k) for k in keys},
            'earlier_not_evaluated': earlier,
            'best': None if best is None else {k: best.get(k) for k in keys},
            'evaluated': len(done),
            'pending': sum(e['status'] == 'pending' for e in entries),
            'errors': sum(e['status'] == 'error' for e in entries),
            'skipped': dict(sorted(skipped.items()))}


def _fmt(value: Any, spec: str = '.1f') -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return 'n/a'
    return format(value, spec)


def _startup_note(entry: Dict[str, Any]) -> str:
    """Return ' (X min after start-up: Y s of compilation ...)' when the entry knows it."""
    if entry.get('after_startup_min') is None:
        return ''
    return (f' ({_fmt(entry["after_startup_min"])} min after the start-up: the training clock '
            f'includes {_fmt(entry["startup_s"])} s of first iterations, i.e. kernel '
            'compilation and graph capture)')


def markdown(result: Dict[str, Any]) -> str:
    """Return the report as Markdown: the outcome, then one table row per snapshot."""
    lines = [f'Time to policy of `{result["source"]}`: every snapshot through the '
             f'`{result["suite"]}` robustness suite'
             + (f' (scenarios {", ".join(result["only"])})' if result['only'] else '')
             + f', commit {result["commit"] or "unknown"}.', '']
    first, best = result['earliest_all_met'], result['best']
    if first is not None:
        lines.append(f'**Earliest snapshot meeting every target:** `{first["name"]}` (iteration '
                     f'{first["iteration"]}) after **{_fmt(first["train_wall_time_min"])} min** '
                     'of training' + _startup_note(first) + '.')
        unknown = result.get('earlier_not_evaluated', [])
        if unknown:
            why = ', '.join(f'`{e["name"]}`: {e["status"]}' for e in unknown)
            lines.append(f'Not proven the earliest: {len(unknown)} earlier snapshot(s) not '
                         f'evaluated ({why}).')
    else:
        lines.append(f'**No snapshot meets every target** ({result["evaluated"]} evaluated, '
                     f'{result["pending"]} pending, {result["errors"]} failed to run).')
        if best is not None:
            lines.append(f'The best, `{best["name"]}` at {_fmt(best["train_wall_time_min"])} min'
                         f'{_startup_note(best)}, passes {best["passed"]} of '
                         f'{best["scenarios"]} scenarios; it misses:')
            lines += [f'- `{name}`: {"; ".join(why)}' for name, why in best['failed'].items()]
    skipped = result.get('skipped', {})
    if skipped:
        lines += ['', f'{len(skipped)} scenario(s) skipped (do not apply): '
                  + '; '.join(f'`{name}` ({why})' for name, why in skipped.items())
                  + '. "Every target" is of the scenarios run.']
    names = [e['name'] for e in result['snapshots']]
    lines += ['', '| snapshot | iteration | training [min] | after start-up [min] '
              '| env steps [M] | scenarios passed | falls / episodes | failing scenarios '
              '| every target met |', '|---|---|---|---|---|---|---|---|---|']
    for e in result['snapshots']:
        steps = None if e.get('env_steps') is None else e['env_steps'] / 1e6
        label = f'`{e["name"]}`'
        if names.count(e['name']) > 1:  # one name, two policies: tell them apart
            label += (f' (ONNX {(e.get("onnx_sha256") or "unknown")[:8]}'
                      + (', earlier command)' if 'from' in e else ')'))
        head = (f'| {label} | {e["iteration"]} | {_fmt(e["train_wall_time_min"])} | '
                f'{_fmt(e.get("after_startup_min"))} | {_fmt(steps)} | ')
        if e['status'] != 'evaluated':
            lines.append(head + f'- | - | {e["status"]} | - |')
            continue
        failing = ', '.join(f'`{n}`' for n in e['failed']) or '-'
        met = '**yes**' if e['all_met'] else 'no'
        lines.append(head + f'{e["passed"]} / {e["scenarios"]} | {e["falls"]} / '
                     f'{e["episodes"]} | {failing} | {met} |')
    return '\n'.join(lines) + '\n'


def plot(result: Dict[str, Any], path: Path) -> Optional[Path]:
    """Save scenarios passed against training minutes; None when no snapshot has a time."""
    done = [e for e in result['snapshots']
            if e['status'] == 'evaluated' and e['train_wall_time_min'] is not None]
    if not done:
        return None
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    fig, ax = plt.subplots(figsize=(8, 4.5))
    minutes = [e['train_wall_time_min'] for e in done]
    ax.plot(minutes, [e['passed'] for e in done], color='#555555', lw=1)
    ax.scatter(minutes, [e['passed'] for e in done], zorder=3,
               c=['#3a9d4a' if e['all_met'] else '#d0443c' for e in done])
    total = max(e['scenarios'] for e in done)
    ax.axhline(total, ls='--', color='#3a9d4a', lw=1, label=f'every scenario ({total})')
    first = result['earliest_all_met']
    if first is not None and first['train_wall_time_min'] is not None:
        ax.axvline(first['train_wall_time_min'], color='#3a9d4a', lw=1,
                   label=f'every target met: {first["train_wall_time_min"]:.1f} min')
    ax.set_xlabel('training wall time [min]')
    ax.set_ylabel('scenarios passed')
    ax.set_ylim(0, total + 1)
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_title(f'{result["suite"]} robustness suite per snapshot (green: every target met)')
    ax.grid(alpha=0.3)
    ax.legend(loc='lower right')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _write(result: Dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    result.update(summarize(result['snapshots']))
    (out / f'{REPORT_NAME}.json').write_text(json.dumps(jsonable(result), indent=1) + '\n')
    (out / f'{REPORT_NAME}.md').write_text(markdown(result))
    plot(result, out / f'{REPORT_NAME}.png')


def time_to_policy(cmd: TimeToPolicyCommand,
                   progress: Callable[[str], None] = print) -> Dict[str, Any]:
    """Evaluate the snapshots (watching for new ones if asked); write and return the report."""
    folder = snapshot_folder(cmd.path)
    if not cmd.watch and not folder.is_dir():
        raise SystemExit(f'time_to_policy: no snapshots folder at {folder}')
    run_folder = folder.parent if folder.name == 'snapshots' else folder
    out = Path(cmd.out) if cmd.out is not None else run_folder / REPORT_NAME
    start, start_wall = time.monotonic(), time.time()
    deadline = start + 60.0 * cmd.timeout_min if cmd.timeout_min > 0 else math.inf
    previous = _previous_entries(cmd.previous, cmd)
    result: Dict[str, Any] = {
        'source': str(folder), 'suite': cmd.suite, 'only': list(cmd.only),
        'targets': asdict(cmd.targets), 'workers': cmd.workers,
        'commit': git_commit(REPO_ROOT),
        'created_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec='seconds'),
        'command_line': ' '.join(['python -m training.robustness.time_to_policy']
                                 + sys.argv[1:]),
        'out': str(out), 'stopped_by': None, 'snapshots': []}
    done: Dict[Tuple[str, Optional[str]], Dict[str, Any]] = {_key(e): e for e in previous}
    known: Dict[Tuple[str, float], Snapshot] = {}
    stop_file = cmd.stop_file
    stop_at_start = None if stop_file is None else file_state(stop_file)
    since_wall = process_start_wall_s() or start_wall  # a stop file written after this counts
    stopping = not cmd.watch
    clashes: Dict[Tuple[str, Optional[str]], str] = {}  # snapshot -> its report's name

    def entries(snapshots: Sequence[Snapshot]) -> List[Dict[str, Any]]:
        rows = dict(done)
        for snap in snapshots:
            rows.setdefault((snap.name, snap.onnx_sha256),
                            {**_base_entry(snap), 'status': 'pending'})
        return sorted(rows.values(), key=_order)

    def clash(snap: Snapshot) -> Optional[str]:
        """Return a report name of its own for a snapshot whose name an earlier one had."""
        key = (snap.name, snap.onnx_sha256)
        if key not in clashes:
            other = [e for k, e in done.items() if k[0] == snap.name and k != key]
            if not other:
                return None
            clashes[key] = f'{snap.name}_{(snap.onnx_sha256 or "unknown")[:12]}'
            progress(f'[time_to_policy] {snap.name}: {other[0].get("from", "an earlier look")} '
                     f'has a snapshot of this name with another ONNX file (training resumed '
                     f'from an older checkpoint?); this one is evaluated too, and both listed')
        return clashes[key]

    try:
        while True:
            if not stopping:
                if stop_file is None:
                    stop_file = final_export_of(run_folder)
                    stop_at_start = None if stop_file is None else file_state(stop_file)
                if stop_file is not None and stop_file_written(stop_file, stop_at_start,
                                                               since_wall):
                    stopping, result['stopped_by'] = True, 'stop_file'
                    progress(f'[time_to_policy] {stop_file} written: evaluating what is left')
            # once training has stopped, every snapshot is complete: no settle time
            snapshots = find_snapshots(folder, 0.0 if stopping else cmd.settle_s, known)
            todo = [s for s in snapshots if (s.name, s.onnx_sha256) not in done]
            if time.monotonic() >= deadline:
                result['stopped_by'] = 'timeout'
                result['snapshots'] = entries(snapshots)
                progress(f'[time_to_policy] --timeout-min {cmd.timeout_min:g} reached; '
                         f'{len(todo)} snapshot(s) left unevaluated')
                break
            if todo:
                snap = todo[0]
                entry = evaluate_snapshot(snap, cmd, out, progress, clash(snap))
                done[(snap.name, snap.onnx_sha256)] = entry
                result['snapshots'] = entries(snapshots)
                _write(result, out)
                if entry['status'] == 'evaluated':
                    misses = ', '.join(entry['failed']) or 'nothing'
                    progress(f'[time_to_policy] {snap.name} ({_fmt(entry["train_wall_time_min"])}'
                             f' min of training): {entry["passed"]}/{entry["scenarios"]} '
                             f'scenarios pass; misses {misses}')
                continue
            if stopping:
                result['stopped_by'] = result['stopped_by'] or 'all_evaluated'
                result['snapshots'] = entries(snapshots)
                break
            time.sleep(cmd.poll_s)
    except KeyboardInterrupt:
        result['stopped_by'] = 'interrupted'
        result['snapshots'] = entries(find_snapshots(folder, 0.0, known))
        _write(result, out)
        raise
    _write(result, out)
    return result


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Command-line entry point; exit status 0 when a snapshot meets every target."""
    cmd = tyro.cli(TimeToPolicyCommand, args=argv,
                   prog='python -m training.robustness.time_to_policy',
                   description='The earliest snapshot of a training run that meets every '
                               'target of the robustness suite, with its training time.')
    result = time_to_policy(cmd)
    first = result['earliest_all_met']
    if first is not None:
        print(f'[time_to_policy] earliest snapshot meeting every target: {first["name"]} after '
              f'{_fmt(first["train_wall_time_min"])} min of training')
        if result['earlier_not_evaluated']:
            print('[time_to_policy] not proven the earliest: earlier snapshot(s) not evaluated: '
                  + ', '.join(f'{e["name"]} ({e["status"]})'
                              for e in result['earlier_not_evaluated']))
    else:
        print(f'[time_to_policy] no snapshot meets every target ({result["evaluated"]} '
              f'evaluated, {result["pending"]} pending)')
    if result['skipped']:
        print(f'[time_to_policy] {len(result["skipped"])} scenario(s) skipped (do not apply): '
              + ', '.join(result['skipped']))
    print(f'[time_to_policy] report: {Path(result["out"]) / REPORT_NAME}.json, .md and .png')
    return 0 if first is not None else 1


if __name__ == '__main__':
    sys.exit(main())
