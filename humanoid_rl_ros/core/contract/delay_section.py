"""
The contract's ``training.action_delay_tolerance`` section: the measured delay tolerance.

Its types (:class:`ActionDelayTolerance` and its parts), reading and writing. An optional
section (absent: not measured), written by ``python -m training.export
record-tolerance`` from a robustness report of the policy. It gives, for each place the PD
law can run (:data:`PD_LOCATIONS`), the delays tried with the episodes and falls at each;
``tolerated_s`` and ``first_failed_s`` follow from them (:data:`DELAY_CRITERION`) and are
checked on reading. ``source`` says which report, suite, date and commit the figures come from
and which graph they were measured on. The location-free ``training.tolerated_action_delay_s``
must then be the smaller of the two tolerated delays (null where either is unknown), so a
format-2 reader that knows only that field reads a figure that holds wherever the PD law runs.
"""

import dataclasses
from dataclasses import dataclass
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from humanoid_rl_ros.core.contract.facts import (check_facts, ContractError,
                                                 DELAY_TOLERANCE_FACTS, PD_IN_DRIVE, PD_IN_NODE,
                                                 PD_LOCATIONS)
from humanoid_rl_ros.core.contract.fields import integer, mapping, number, require, string


@dataclass(frozen=True)
class DelayTrial:
    """One action delay the policy was run at, and how many of its episodes fell."""

    delay_s: float
    """The delay [s] (what it delays: ``DELAY_PD_IN_NODE`` or ``DELAY_PD_IN_DRIVE``)."""
    episodes: int
    """Episodes run at this delay."""
    falls: int
    """Episodes of them that fell."""


@dataclass(frozen=True)
class DelayTolerance:
    """The action delays tried with the PD law in one place, and what they show (``criterion``)."""

    tried: Tuple[DelayTrial, ...]
    """The delays tried, shortest first."""

    @property
    def tolerated_s(self) -> Optional[float]:
        """Return the largest tried delay [s] with no fall there or below; None: the first fell."""
        tolerated = None
        for trial in self.tried:
            if trial.falls:
                break
            tolerated = trial.delay_s
        return tolerated

    @property
    def first_failed_s(self) -> Optional[float]:
        """Return the smallest tried delay [s] at which an episode fell; None: none fell."""
        return next((t.delay_s for t in self.tried if t.falls), None)


@dataclass(frozen=True)
class DelaySource:
    """Where a measured delay tolerance came from: the robustness report and the policy run."""

    suite: str
    """The robustness suite run (``python -m training.robustness --suite``)."""
    created_utc: str
    """When the report was made (ISO 8601, UTC)."""
    commit: str
    """The code commit the report was made at."""
    command_line: str
    """The command that made the report."""
    report: str
    """The report file the figures were read from."""
    policy_graph_sha256: str
    """SHA-256 of the ONNX graph (weights included) the report measured: this policy's."""


@dataclass(frozen=True)
class ActionDelayTolerance:
    """
    The action delay a policy was measured to tolerate, per place of the PD law.

    Not one number: with the PD law in the node the whole sensing-to-effort round trip is late
    (the PD law damps with old velocities), with it in the drive only the policy's targets are.
    ``None`` for a place that was not measured.
    """

    pd_in_node: Optional[DelayTolerance]
    """Delays tried with the PD law in the policy node (efforts sent)."""
    pd_in_drive: Optional[DelayTolerance]
    """Delays tried with the PD law in the joint drive (position targets sent)."""
    source: DelaySource
    """Where the figures came from."""

    def at(self, pd_in_drive: bool) -> Optional[DelayTolerance]:
        """Return the figures for the PD law in the drive (True) or in the node (False)."""
        return self.pd_in_drive if pd_in_drive else self.pd_in_node

    @property
    def bound_s(self) -> Optional[float]:
        """Return the delay [s] tolerated wherever the PD law runs; None if either is unknown."""
        places = (self.pd_in_node, self.pd_in_drive)
        figures = [None if place is None else place.tolerated_s for place in places]
        return None if None in figures else min(figures)

    def note(self, pd_in_drive: bool) -> str:
        """Return one line on the delay tolerated where the PD law runs, with its source."""
        head = f'tolerated action delay, PD law in the {"drive" if pd_in_drive else "node"}: '
        origin = (f'robustness suite {self.source.suite}, {self.source.created_utc}, commit '
                  f'{self.source.commit[:7]}')
        figures = self.at(pd_in_drive)
        if figures is None:
            return head + f'not measured ({origin})'
        tolerated, failed = figures.tolerated_s, figures.first_failed_s
        if tolerated is None:
            text = f'under {1e3 * failed:g} ms (the shortest delay tried fell)'
        elif failed is None:
            text = f'{1e3 * tolerated:g} ms or more (no delay tried fell)'
        else:
            text = f'{1e3 * tolerated:g} ms ({1e3 * failed:g} ms fell)'
        return head + f'{text}; {origin}'


DELAY_TOLERANCE_PATH = 'training.action_delay_tolerance'
"""Dotted path of the section."""

FLAT_PATH = 'training.tolerated_action_delay_s'
"""Dotted path of the location-free figure."""


def parse_delay_tolerance(raw: Any, data: Mapping[str, Any]) -> ActionDelayTolerance:
    """Return the section ``raw`` of the document ``data``, validated."""
    path = DELAY_TOLERANCE_PATH
    mapping(raw, path)
    check_facts(data, DELAY_TOLERANCE_FACTS)
    places: Dict[str, Optional[DelayTolerance]] = {}
    for key in PD_LOCATIONS:
        value = require(raw, key, path)
        places[key] = None if value is None else _parse_place(value, f'{path}.{key}')
    if all(place is None for place in places.values()):
        raise ContractError(path, f'states neither {PD_IN_NODE} nor {PD_IN_DRIVE}: leave the '
                            'section out where nothing was measured')
    source = mapping(require(raw, 'source', path), f'{path}.source')
    return ActionDelayTolerance(
        pd_in_node=places[PD_IN_NODE], pd_in_drive=places[PD_IN_DRIVE],
        source=DelaySource(**{
            f.name: string(require(source, f.name, f'{path}.source'),
                           f'{path}.source.{f.name}')
            for f in dataclasses.fields(DelaySource)}))


def _parse_place(raw: Any, path: str) -> DelayTolerance:
    mapping(raw, path)
    tried = require(raw, 'tried', path)
    if not isinstance(tried, Sequence) or isinstance(tried, str) or not tried:
        raise ContractError(f'{path}.tried', 'expected a non-empty list of {delay_s, episodes, '
                            f'falls}}, got {tried!r}')
    trials: List[DelayTrial] = []
    for i, entry in enumerate(tried):
        where = f'{path}.tried[{i}]'
        mapping(entry, where)
        trial = DelayTrial(
            delay_s=number(require(entry, 'delay_s', where), f'{where}.delay_s', nonneg=True),
            episodes=integer(require(entry, 'episodes', where), f'{where}.episodes'),
            falls=integer(require(entry, 'falls', where), f'{where}.falls', minimum=0))
        if trial.falls > trial.episodes:
            raise ContractError(f'{where}.falls', f'{trial.falls} falls in {trial.episodes} '
                                'episodes')
        if trials and trial.delay_s <= trials[-1].delay_s:
            raise ContractError(f'{where}.delay_s', f'the delays tried must increase, got '
                                f'{trial.delay_s} after {trials[-1].delay_s}')
        trials.append(trial)
    place = DelayTolerance(tried=tuple(trials))
    for key, derived in (('tolerated_s', place.tolerated_s),
                         ('first_failed_s', place.first_failed_s)):
        stated = require(raw, key, path)
        if stated is not None:
            stated = number(stated, f'{path}.{key}', nonneg=True)
        if not _same(stated, derived):
            raise ContractError(f'{path}.{key}', f'the delays tried give {derived!r}, the '
                                f'contract says {stated!r}')
    return place


def _same(a: Optional[float], b: Optional[float]) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def check_flat_figure(flat: Optional[float], tolerance: ActionDelayTolerance) -> None:
    """Raise unless ``tolerated_action_delay_s`` is the section's delay tolerated anywhere."""
    bound = tolerance.bound_s
    if not _same(flat, bound):
        raise ContractError(FLAT_PATH, f'with {DELAY_TOLERANCE_PATH} stated it is the smaller '
                            f'of the tolerated_s of {PD_IN_NODE} and {PD_IN_DRIVE} (null where '
                            f'either is unknown): {bound!r}, the contract says {flat!r}')


def delay_tolerance_to_dict(tolerance: ActionDelayTolerance) -> Dict[str, Any]:
    """Lay out the section (its code facts as ``None`` placeholders)."""
    document: Dict[str, Any] = {}
    for key in PD_LOCATIONS:
        place = getattr(tolerance, key)
        document[key] = None if place is None else {
            'tolerated_s': _float_or_none(place.tolerated_s),
            'first_failed_s': _float_or_none(place.first_failed_s),
            'tried': [{'delay_s': float(t.delay_s), 'episodes': int(t.episodes),
                       'falls': int(t.falls)} for t in place.tried]}
    for dotted, _ in DELAY_TOLERANCE_FACTS:
        document[dotted.rpartition('.')[2]] = None
    document['source'] = {f.name: str(getattr(tolerance.source, f.name))
                          for f in dataclasses.fields(DelaySource)}
    return document


def _float_or_none(value: Optional[float]) -> Optional[float]:
    return None if value is None else float(value)
