"""ANC derived from WBC and the differential (SAFETY_RULES §2 "ANC derivation", §6; DOMAIN §9.3).

When a specimen has no measured ANC but a WBC and the neutrophil % (plus band % when present),
ANC = WBC x (%neutrophils + %bands) / 100, stored as a result of its own marked derived. Results of
one specimen may arrive in separate records, so the specimen's parts are kept in the participant
state and the derived ANC is recomputed after each record that touches them (after all results of
that record are stored). A changed derived ANC is re-graded like a correction.
"""

from __future__ import annotations

from decimal import Decimal

from services.safety_rules.domain.config_model import StudyConfig
from services.safety_rules.domain.lab_intake import NOT_ANCHORING, drop_result, store_result, touch_result_slots
from services.safety_rules.domain.model import Batch, Touch
from services.safety_rules.domain.results import LabValue
from services.safety_rules.domain.state import ParticipantState

DERIVED_PREFIX = "derived-anc:"
_PERCENT = Decimal(100)


def _part(participant: ParticipantState, parts: dict[str, str], test: str) -> LabValue | None:
    key = parts.get(test)
    return None if key is None else participant.results.get(key)


def _exact(value: LabValue | None) -> bool:
    return value is not None and value.usable and value.comparator is None


def derived_anc(config: StudyConfig, participant: ParticipantState, specimen: str) -> LabValue | None:
    """The ANC a specimen's parts give, or None (a measured ANC, or a part missing or unusable)."""
    rule = config.anc_derivation
    parts = participant.specimens.get(specimen, {})
    if rule.derived_test in parts:
        return None
    wbc = _part(participant, parts, rule.wbc_test)
    required = [_part(participant, parts, test) for test in rule.required_percent]
    optional = [_part(participant, parts, test) for test in rule.optional_percent if test in parts]
    inputs = [wbc, *required, *optional]
    if not all(_exact(value) for value in inputs):
        return None
    values = [value for value in inputs if value is not None]
    total = sum((value.value for value in values[1:] if value.value is not None), Decimal(0))
    assert values[0].value is not None
    return LabValue(
        key=DERIVED_PREFIX + specimen,
        test=rule.derived_test,
        at=values[0].at,
        value=values[0].value * total / _PERCENT,
        comparator=None,
        unit=config.scale.tests[rule.derived_test].unit,
        lln=None,
        uln=None,
        status="final",
        specimen=specimen,
        source=values[0].source,
        derived=True,
        inputs=tuple(value.key for value in values),
        sources=tuple(value.source for value in values),
    )


def _same(old: LabValue, new: LabValue) -> bool:
    return (old.value, old.at, old.inputs, old.sources) == (new.value, new.at, new.inputs, new.sources)


def refresh_derived(config: StudyConfig, participant: ParticipantState, batch: Batch) -> None:
    """Recompute the derived ANC of every specimen the record touched."""
    for specimen, touch in batch.specimens.items():
        _refresh(config, participant, batch, specimen, touch)


def _refresh(config: StudyConfig, participant: ParticipantState, batch: Batch, specimen: str, touch: Touch) -> None:
    old = participant.results.get(DERIVED_PREFIX + specimen)
    new = derived_anc(config, participant, specimen)
    if (new is None and old is None) or (old is not None and new is not None and _same(old, new)):
        return
    if old is not None:
        drop_result(config, participant, old)
    anchoring = NOT_ANCHORING
    if new is None:
        assert old is not None
        batch.invalidated.add(old.key)
    else:
        anchoring = store_result(config, participant, new)
    touch_result_slots(config, participant, batch, (old, new), touch, anchoring=anchoring)
