"""Applying laboratory and temperature results to the participant state (SAFETY_RULES §2, §6).

Status handling: final/corrected replace the current version of the result (`result_key`);
preliminary is stored but never replaces a final and fires nothing; cancelled is ignored; deleted
removes the result and invalidates every signal that used it. Each change marks the slots whose
rules may now decide differently: the signals that used the result, its own rules, the composite
anchors within the window of either version, and its specimen's derived ANC.
This is the per-result hot path of replay: roles of each test are precomputed in the config.
"""

from __future__ import annotations

from services.safety_rules.domain.composite import FN_ANCHORS, HYS_ANCHORS, anchors_fn, anchors_hys
from services.safety_rules.domain.config_model import StudyConfig, TestRoles
from services.safety_rules.domain.grading import certainly
from services.safety_rules.domain.model import Batch, Touch, touch_of
from services.safety_rules.domain.registry import DATA_QUALITY, FEBRILE_NEUTROPENIA, GRADE, HYS_LAW
from services.safety_rules.domain.results import LabValue
from services.safety_rules.domain.state import ParticipantState
from shared.events.clinical import LabResultRecorded, VitalSignRecorded

Measurement = LabResultRecorded | VitalSignRecorded
_new_tuple = tuple.__new__
#: Whether a stored result anchors LAB-FN and LAB-HYS.
Anchoring = tuple[bool, bool]
NOT_ANCHORING: Anchoring = (False, False)
_WINDOW_FAMILY = {"LAB-FN": FEBRILE_NEUTROPENIA.name, "LAB-HYS": HYS_LAW.name}


def data_issue(roles: TestRoles, event: Measurement, comparator: str | None) -> str | None:
    """Why a result cannot be graded safely (LAB-DQ, SAFETY_RULES §2, §6), or None: the parser's
    reason (range, ratio, unconvertible unit), no numeric value, an unknown or non-canonical unit,
    or an implausible magnitude."""
    if event.data_issue:
        return event.data_issue
    if event.value is None or not event.value.is_finite():
        return "non-numeric value"
    if event.unit is None:
        return "unknown or unconvertible unit"
    if event.unit != roles.unit:
        return f"unit {event.unit} is not the canonical unit {roles.unit}"
    limit = roles.plausible_max
    if limit is not None and certainly("gt", event.value, comparator, limit):
        return f"implausible magnitude: above {limit} {roles.unit}"
    return None


def _value(roles: TestRoles, event: Measurement) -> LabValue:
    if type(event) is LabResultRecorded:  # exact type: isinstance on a pydantic class is slow, no subclasses
        comparator, lln, uln, specimen, derived = (
            event.comparator,
            event.ref_low,
            event.ref_high,
            event.specimen_id,
            event.derived,
        )
    else:
        comparator, lln, uln, specimen, derived = None, None, None, "", False
    issue = data_issue(roles, event, comparator)
    # every field given, so built as a tuple: the named tuple's generated `__new__` costs a call per result
    return _new_tuple(LabValue, (
        event.result_key, event.test, event.occurred_at, event.value, comparator, event.unit, lln, uln,
        event.status, specimen, event.source, issue, derived, (), (),
    ))  # fmt: skip


def store_result(config: StudyConfig, participant: ParticipantState, value: LabValue) -> Anchoring:
    """Keep a final or corrected result and index it by time, specimen and composite anchoring; return
    whether it anchors LAB-FN / LAB-HYS (so that touching its slots does not decide it again)."""
    roles = config.roles[value.test]
    participant.results[value.key] = value
    participant.note_time(value.at)
    if roles.indexed:
        participant.series_of(value.test).add(value.at, value.key)
        if participant.before_first_dose(value.at):
            participant.baselines.pop(value.test, None)
    if roles.derivation_input and not value.inputs:
        participant.specimens.setdefault(value.specimen, {})[value.test] = value.key
    fn = roles.fn_anchor and anchors_fn(config, value)
    if fn:
        participant.anchors_of(FN_ANCHORS).add(value.at, value.key)
    hys = roles.hys_anchor and anchors_hys(config, value)
    if hys:
        participant.anchors_of(HYS_ANCHORS).add(value.at, value.key)
    return fn, hys


def drop_result(config: StudyConfig, participant: ParticipantState, value: LabValue) -> None:
    """Forget the current version of a result."""
    roles = config.roles[value.test]
    participant.results.pop(value.key, None)
    series = participant.series.get(value.test)
    if series is not None:
        series.remove(value.at, value.key)
        if participant.before_first_dose(value.at):
            participant.baselines.pop(value.test, None)
    parts = participant.specimens.get(value.specimen) if roles.derivation_input else None
    if parts is not None and parts.get(value.test) == value.key:
        del parts[value.test]
        if not parts:
            del participant.specimens[value.specimen]
    if roles.fn_anchor:
        participant.anchors_of(FN_ANCHORS).remove(value.at, value.key)
    if roles.hys_anchor:
        participant.anchors_of(HYS_ANCHORS).remove(value.at, value.key)


def touch_result_slots(
    config: StudyConfig,
    participant: ParticipantState,
    batch: Batch,
    versions: tuple[LabValue | None, LabValue | None],
    touch: Touch,
    *,
    anchoring: Anchoring,
) -> None:
    """Mark the slots a result change (previous, current version) may affect; `anchoring` is what
    `store_result` returned for the current version."""
    previous, current = versions
    result = current or previous
    assert result is not None
    key, roles = result.key, config.roles[result.test]
    users = participant.users.get(key)
    if users:
        for slot in sorted(users):
            batch.touch(slot, touch)
    if current is not None:
        if roles.graded:
            batch.touch((GRADE.name, key), touch)
        if roles.data_quality and current.issue is not None:
            batch.touch((DATA_QUALITY.name, key), touch)
        if anchoring[0]:
            batch.touch((FEBRILE_NEUTROPENIA.name, key), touch)
        if anchoring[1]:
            batch.touch((HYS_LAW.name, key), touch)
    if roles.window is not None:
        _touch_window(config, participant, batch, roles.window, versions, touch=touch)
    if roles.derivation_input and not result.inputs:
        batch.specimens.setdefault(result.specimen, touch)


def _touch_window(
    config: StudyConfig,
    participant: ParticipantState,
    batch: Batch,
    rule_id: str,
    versions: tuple[LabValue | None, LabValue | None],
    *,
    touch: Touch,
) -> None:
    """A temperature may complete LAB-FN of ANCs around it; ALT/AST/ALP decide LAB-HYS around them."""
    anchors = participant.anchors.get(rule_id)
    if not anchors or not anchors.times:
        return
    window = config.febrile_neutropenia.window if rule_id == FN_ANCHORS else config.hys_law.window
    family = _WINDOW_FAMILY[rule_id]
    for version in versions:
        if version is not None:
            for anchor in anchors.between(version.at - window, version.at + window):
                batch.touch((family, anchor), touch)


def apply_measurement(config: StudyConfig, participant: ParticipantState, batch: Batch, event: Measurement) -> None:
    """Apply one laboratory result or temperature according to its status."""
    roles = config.roles.get(event.test)
    if roles is None or event.status == "cancelled":
        return
    old = participant.results.get(event.result_key)
    if event.status == "preliminary":
        if old is None or old.status == "preliminary":
            participant.results[event.result_key] = _value(roles, event)
        return
    touch = touch_of(event.occurred_at, event.source)
    if old is not None:
        drop_result(config, participant, old)
    if event.status == "deleted":
        if old is not None:
            batch.invalidated.add(old.key)
            touch_result_slots(config, participant, batch, (old, None), touch, anchoring=NOT_ANCHORING)
        return
    new = _value(roles, event)
    anchoring = store_result(config, participant, new)
    touch_result_slots(config, participant, batch, (old, new), touch, anchoring=anchoring)
