"""The contract's measured action delay tolerance: per place of the PD law, read and written."""

import copy
import dataclasses

from humanoid_rl_ros.core.contract import (ActionDelayTolerance, contract_from_dict,
                                           contract_text, contract_to_dict, ContractError,
                                           DELAY_TOLERANCE_FACTS, DelaySource, DelayTolerance,
                                           DelayTrial, read_contract, TrainingConditions,
                                           write_contract)
from policy_fixtures import kestrel_contract
import pytest

SOURCE = DelaySource(suite='full', created_utc='2026-12-04T23:51:57+00:00',
                     commit='d6609b4826b8b2cfa8b7719b088a24f3ff0db4ed',
                     command_line='python -m training.robustness models/walk.yaml',
                     report='benchmarks/robustness/robustness_report.json',
                     policy_graph_sha256='ab' * 32)


def _place(*trials) -> DelayTolerance:
    """Return the figures of ``(delay_s, episodes, falls)`` trials."""
    return DelayTolerance(tried=tuple(DelayTrial(*t) for t in trials))


# the shipped policy's figures: 5 ms in the node (10 ms fell), 40 ms and more in the drive
MEASURED = ActionDelayTolerance(
    pd_in_node=_place((0.005, 14, 0), (0.01, 14, 14), (0.02, 14, 14), (0.04, 14, 14)),
    pd_in_drive=_place((0.02, 14, 0), (0.04, 14, 0)), source=SOURCE)


def _contract(tolerance=MEASURED, flat=0.005):
    """Return a Kestrel contract whose training states ``tolerance`` and the figure ``flat``."""
    return dataclasses.replace(
        kestrel_contract(onnx_file='walk.onnx'),
        training=TrainingConditions(tolerated_action_delay_s=flat,
                                    action_delay_tolerance=tolerance))


def test_tolerated_and_first_failed_delays_follow_from_the_delays_tried():
    assert MEASURED.pd_in_node.tolerated_s == 0.005
    assert MEASURED.pd_in_node.first_failed_s == 0.01
    assert MEASURED.pd_in_drive.tolerated_s == 0.04
    assert MEASURED.pd_in_drive.first_failed_s is None  # none fell: the limit lies above
    assert MEASURED.bound_s == 0.005  # what holds wherever the PD law runs
    # a pass above a failure does not count: 10 ms fell
    bumpy = _place((0.005, 2, 0), (0.01, 2, 1), (0.02, 2, 0))
    assert (bumpy.tolerated_s, bumpy.first_failed_s) == (0.005, 0.01)
    # the shortest delay tried fell: nothing is known to be tolerated
    none = _place((0.01, 2, 2))
    assert (none.tolerated_s, none.first_failed_s) == (None, 0.01)
    assert ActionDelayTolerance(none, MEASURED.pd_in_drive, SOURCE).bound_s is None
    assert ActionDelayTolerance(MEASURED.pd_in_node, None, SOURCE).bound_s is None


def test_the_section_is_written_with_its_facts_and_reads_back_equal(tmp_path):
    contract = _contract()
    document = contract_to_dict(contract)
    section = document['training']['action_delay_tolerance']
    assert document['training']['tolerated_action_delay_s'] == 0.005
    assert section['pd_in_node']['tolerated_s'] == 0.005
    assert section['pd_in_node']['first_failed_s'] == 0.01
    assert section['pd_in_node']['tried'][1] == {'delay_s': 0.01, 'episodes': 14, 'falls': 14}
    assert section['pd_in_drive']['first_failed_s'] is None
    assert section['source']['commit'] == SOURCE.commit
    for dotted, value in DELAY_TOLERANCE_FACTS:
        assert section[dotted.rpartition('.')[2]] == value
    path = write_contract(contract, tmp_path / 'walk.yaml')
    assert read_contract(path) == contract
    assert read_contract(path).unknown_fields().count('training.tolerated_action_delay_s') == 0


def test_the_tolerated_delay_depends_on_where_the_pd_law_runs():
    training = _contract().training
    assert training.tolerated_delay_s(pd_in_drive=False) == 0.005
    assert training.tolerated_delay_s(pd_in_drive=True) == 0.04
    assert training.delay_tolerance_note(pd_in_drive=False) == (
        'tolerated action delay, PD law in the node: 5 ms (10 ms fell); robustness suite full, '
        '2026-12-04T23:51:57+00:00, commit d6609b4')
    assert training.delay_tolerance_note(pd_in_drive=True).startswith(
        'tolerated action delay, PD law in the drive: 40 ms or more (no delay tried fell); ')
    node_only = _contract(ActionDelayTolerance(MEASURED.pd_in_node, None, SOURCE), None)
    assert node_only.training.tolerated_delay_s(pd_in_drive=True) is None
    assert 'drive: not measured (robustness suite full' in (
        node_only.training.delay_tolerance_note(pd_in_drive=True))
    # no section: the location-free figure of older files, for either place, or unknown
    flat = TrainingConditions(tolerated_action_delay_s=0.01)
    assert flat.tolerated_delay_s(True) == flat.tolerated_delay_s(False) == 0.01
    assert 'does not say where' in flat.delay_tolerance_note(True)
    assert TrainingConditions().tolerated_delay_s(False) is None
    assert TrainingConditions().delay_tolerance_note(False) == (
        'tolerated action delay, PD law in the node: not measured')


def test_a_file_without_the_section_keeps_its_text():
    """Files written before the section existed (the shipped one among them) stay as they were."""
    contract = _contract(None, None)
    assert 'action_delay_tolerance' not in contract_to_dict(contract)['training']
    assert 'action_delay_tolerance' not in contract_text(contract)
    assert contract_from_dict(contract_to_dict(contract)) == contract


def test_a_reader_that_ignores_the_section_reads_the_delay_tolerated_anywhere():
    """Format-2 readers older than the section see tolerated_action_delay_s: the smaller one."""
    document = contract_to_dict(_contract())
    del document['training']['action_delay_tolerance']
    assert contract_from_dict(document).training.tolerated_action_delay_s == 0.005


def _edited(edit):
    document = copy.deepcopy(contract_to_dict(_contract()))
    edit(document['training'])
    return document


@pytest.mark.parametrize('edit, match', [
    # a hand-typed location-free figure that is not the measured one
    (lambda t: t.update(tolerated_action_delay_s=0.04),
     r'training\.tolerated_action_delay_s: with training\.action_delay_tolerance stated it is '
     r'the smaller .*: 0\.005, the contract says 0\.04'),
    (lambda t: t.update(tolerated_action_delay_s=None), r'tolerated_action_delay_s: .*says None'),
    # a hand-typed figure that the delays tried do not give
    (lambda t: t['action_delay_tolerance']['pd_in_node'].update(tolerated_s=0.01),
     r'pd_in_node\.tolerated_s: the delays tried give 0\.005, the contract says 0\.01'),
    (lambda t: t['action_delay_tolerance']['pd_in_drive'].update(first_failed_s=0.04),
     r'pd_in_drive\.first_failed_s: the delays tried give None'),
    (lambda t: t['action_delay_tolerance']['pd_in_node']['tried'].reverse(),
     r'pd_in_node\.tried\[1\]\.delay_s: the delays tried must increase'),
    (lambda t: t['action_delay_tolerance']['pd_in_drive']['tried'][0].update(falls=15),
     r'pd_in_drive\.tried\[0\]\.falls: 15 falls in 14 episodes'),
    (lambda t: t['action_delay_tolerance']['pd_in_drive'].update(tried=[]),
     r'pd_in_drive\.tried: expected a non-empty list'),
    (lambda t: t['action_delay_tolerance'].update(pd_in_node=None, pd_in_drive=None),
     r'action_delay_tolerance: states neither pd_in_node nor pd_in_drive'),
    (lambda t: t['action_delay_tolerance']['source'].pop('commit'),
     r'action_delay_tolerance\.source\.commit: missing required field'),
    (lambda t: t['action_delay_tolerance'].update(criterion='any fall rate below 10 %'),
     r'action_delay_tolerance\.criterion: this code implements'),
])
def test_a_section_that_contradicts_itself_is_refused(edit, match):
    with pytest.raises(ContractError, match=match):
        contract_from_dict(_edited(edit))
