"""
Run robustness scenarios: one episode per (scenario, command, seed), over worker processes.

Each worker process loads the policy (onnxruntime, one thread) and the robot once and keeps one
simulator per scenario (and terrain seed). Seeds: the initial joint noise of seed ``k`` is the
evaluator's (``default_rng(k)``), the same in every scenario, so scenarios differ only in what
they perturb; pushes, sensor noise and heightfields draw from seeds derived from ``k`` and the
scenario's name.
"""

from concurrent.futures import as_completed, ProcessPoolExecutor
from dataclasses import dataclass, field
import math
import multiprocessing
from pathlib import Path
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple
import zlib

from humanoid_rl_ros.core.policy_runtime import PolicyRuntime
from humanoid_rl_ros.robot.description import load_robot, RobotConfig
import numpy as np
from training.evaluate import CommandCase, EvalConfig
from training.robustness.episode import (EpisodeSpec, random_pushes, run_episode,
                                         STAND_RAMP_S)
from training.robustness.metrics import episode_metrics
from training.robustness.perturbations import build_sim
from training.robustness.scenarios import Scenario

__all__ = ['Job', 'RunRecord', 'run_job', 'run_scenarios']

INIT_JOINT_NOISE_RAD = EvalConfig.init_joint_noise_rad
"""Uniform noise on the initial joint positions [rad] (the evaluator's)."""
FALL_HEIGHT_FRACTION = EvalConfig.fall_height_fraction
"""A base lower than this share of its nominal height above the ground is a fall."""
KEPT_TRACE = ('t', 'vx', 'vy', 'wz', 'cvx', 'cvy', 'cwz')
"""The trace kept for the figures (seed 0 only)."""


@dataclass(frozen=True)
class Job:
    """One episode to run."""

    scenario: Scenario
    command: CommandCase
    seed: int


@dataclass
class RunRecord:
    """The outcome of one episode."""

    scenario: str
    command: str
    seed: int
    fell: bool
    fall_time_s: Optional[float]
    fault: str
    push_times_s: List[float]
    push_phases: List[float]
    metrics: Dict[str, Any]
    wall_s: float
    trace: Dict[str, List[float]] = field(default_factory=dict, repr=False)
    push_idle_standing: List[bool] = field(default_factory=list)
    """Whether the controller's idle stand held at each push (True: the policy was paused)."""


def _stream(*keys: Any) -> np.random.Generator:
    words = [k if isinstance(k, int) else zlib.crc32(str(k).encode()) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(words))


def job_spec(job: Job, contract) -> EpisodeSpec:
    """Return the episode of ``job`` (initial pose, pushes, perturbations)."""
    scenario, seed = job.scenario, job.seed
    rng = np.random.default_rng(seed)  # the evaluator's initial pose for this seed
    noise = rng.uniform(-INIT_JOINT_NOISE_RAD, INIT_JOINT_NOISE_RAD, contract.num_joints)
    start_walk_s = STAND_RAMP_S + scenario.settle_s
    pushes = ()
    if scenario.pushes is not None:
        p = scenario.pushes
        schedule = random_pushes(_stream(seed, scenario.name, job.command.name, 'push'),
                                 p.first_s, p.gap_s, p.per_episode, p.speed_m_s)
        pushes = tuple(type(e)(start_walk_s + e.time_s, e.delta_vel_world_m_s)
                       for e in schedule)
    return EpisodeSpec(
        command=(job.command.vx_m_s, job.command.vy_m_s, job.command.wz_rad_s),
        start_walk_s=start_walk_s, end_s=start_walk_s + scenario.command_s,
        init_joint_pos_rad=tuple(np.asarray(contract.default_pos_rad) + noise),
        pushes=pushes, fall_height_fraction=FALL_HEIGHT_FRACTION, loop=scenario.loop,
        noise_seed=zlib.crc32(f'{scenario.name}/{job.command.name}/{seed}'.encode()))


class _Worker:
    """The policy, robot and simulators of one process."""

    def __init__(self, contract_path: Path, robot_path: Optional[Path]) -> None:
        self.runtime = PolicyRuntime.load(contract_path)
        self.robot: RobotConfig = load_robot(robot_path if robot_path is not None
                                             else self.runtime.contract.robot)
        self.sims: Dict[Tuple[str, int], Any] = {}

    def sim(self, scenario: Scenario, seed: int):
        terrain_seed = seed if scenario.terrain_per_seed else 0
        key = (scenario.name, terrain_seed)
        if key not in self.sims:
            if len(self.sims) > 8:
                self.sims.clear()
            self.sims[key] = build_sim(self.robot, self.runtime.contract.physics_dt_s,
                                       scenario.model, terrain_seed)
        return self.sims[key]

    def run(self, job: Job) -> RunRecord:
        start = time.perf_counter()
        contract = self.runtime.contract
        spec = job_spec(job, contract)
        sim = self.sim(job.scenario, job.seed)
        episode = run_episode(self.runtime, sim, spec)
        metrics = episode_metrics(
            episode.trace, start_walk_s=spec.start_walk_s, rise_s=job.scenario.rise_s,
            command=spec.command, sample_dt_s=episode.sample_dt_s,
            gait_period_s=contract.gait_period_s, joint_names=contract.joint_names,
            total_mass_kg=episode.total_mass_kg, fell=episode.fell,
            slope_rad=math.radians(job.scenario.model.slope_deg),
            slope_start_x_m=job.scenario.model.slope_start_x_m())
        trace = ({k: episode.trace[k].tolist() for k in KEPT_TRACE} if job.seed == 0 else {})
        return RunRecord(
            scenario=job.scenario.name, command=job.command.name, seed=job.seed,
            fell=episode.fell, fall_time_s=episode.fall_time_s, fault=episode.fault,
            push_times_s=[t - spec.start_walk_s for t in episode.push_times_s],
            push_phases=episode.push_phases,
            push_idle_standing=episode.push_idle_standing, metrics=metrics,
            wall_s=time.perf_counter() - start, trace=trace)


_WORKER: Optional[_Worker] = None


def _init_worker(contract_path: Path, robot_path: Optional[Path]) -> None:
    global _WORKER
    _WORKER = _Worker(contract_path, robot_path)


def run_job(job: Job) -> RunRecord:
    """Run ``job`` in this process's worker (see :func:`_init_worker`)."""
    assert _WORKER is not None, 'worker not initialized'
    return _WORKER.run(job)


def jobs_of(scenarios: Sequence[Scenario]) -> List[Job]:
    """Return every episode of ``scenarios``, longest first (for load balancing)."""
    jobs = [Job(s, c, seed) for s in scenarios for c in s.commands for seed in range(s.seeds)]
    return sorted(jobs, key=lambda j: -j.scenario.episode_s)


def run_scenarios(contract_path: Path, scenarios: Sequence[Scenario], workers: int = 2,
                  robot_path: Optional[Path] = None,
                  progress: Optional[Callable[[str], None]] = print) -> List[RunRecord]:
    """
    Run every episode of ``scenarios``; return the records in scenario, command, seed order.

    ``workers`` > 1 runs them in that many processes (spawned, so that each loads its own
    onnxruntime session); 1 runs them in this process.
    """
    jobs = jobs_of(scenarios)
    remaining = {s.name: s.runs for s in scenarios}
    records: List[RunRecord] = []
    start = time.perf_counter()

    def done(record: RunRecord) -> None:
        records.append(record)
        remaining[record.scenario] -= 1
        if progress is not None and remaining[record.scenario] == 0:
            runs = [r for r in records if r.scenario == record.scenario]
            falls = sum(r.fell for r in runs)
            progress(f'[robustness {len(records)}/{len(jobs)} episodes, '
                     f'{time.perf_counter() - start:.0f} s] {record.scenario}: '
                     f'{falls}/{len(runs)} episodes fell')

    if workers <= 1:
        _init_worker(contract_path, robot_path)
        for job in jobs:
            done(run_job(job))
    else:
        context = multiprocessing.get_context('spawn')
        with ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                 initializer=_init_worker,
                                 initargs=(contract_path, robot_path)) as pool:
            futures = [pool.submit(run_job, job) for job in jobs]
            for future in as_completed(futures):
                done(future.result())
    order = {s.name: i for i, s in enumerate(scenarios)}
    commands = {(s.name, c.name): i for s in scenarios for i, c in enumerate(s.commands)}
    records.sort(key=lambda r: (order[r.scenario], commands[(r.scenario, r.command)], r.seed))
    return records
