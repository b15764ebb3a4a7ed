"""Applying clinical records (AE, ISR diary, EX, REG) to the participant and study state.

Like results, each record only updates facts and marks slots; rules are evaluated afterwards. An AE
with an ae_id already seen is an update: its slots are re-evaluated (SAFETY_RULES §1 "Updates").
"""

from __future__ import annotations

from services.safety_rules.domain import injection_site
from services.safety_rules.domain.adherence import ADHERENCE_ANCHOR
from services.safety_rules.domain.adverse_events import AE_ANCHOR, classify, may_raise
from services.safety_rules.domain.config_model import StudyConfig
from services.safety_rules.domain.model import Batch, Touch, slot_key, touch_of
from services.safety_rules.domain.registry import AE_FAMILIES, EVALUABILITY, INJECTION_SITE
from services.safety_rules.domain.state import DoseFact, ParticipantState
from services.safety_rules.domain.study_state import StudyState
from shared.events.clinical import (
    AdverseEventReported,
    DoseRecorded,
    InjectionSiteReported,
    RegulatorySubmissionRecorded,
)

_AE_FAMILY_NAMES = tuple(family.name for family in AE_FAMILIES)
_ADHERENCE_SLOT = slot_key(EVALUABILITY.name, ADHERENCE_ANCHOR)


def _touch(event: AdverseEventReported | InjectionSiteReported | DoseRecorded) -> Touch:
    return touch_of(event.occurred_at, event.source)


def apply_adverse_event(
    config: StudyConfig, participant: ParticipantState, batch: Batch, ae: AdverseEventReported
) -> None:
    """Store the AE's facts (and its injection-site facts when coded as one) and mark its slots."""
    facts = participant.adverse_events[ae.ae_id] = classify(config, ae)
    anchor = AE_ANCHOR + ae.ae_id
    reaction = injection_site.ae_facts(config, ae)
    if reaction is None:
        participant.injection_sites.pop(anchor, None)
    else:
        participant.injection_sites[anchor] = reaction
    touch, touched, ae_id = _touch(ae), batch.touched, ae.ae_id
    raising, active = may_raise(facts), participant.active
    for name in _AE_FAMILY_NAMES:
        slot = (name, ae_id)
        if raising or slot in active:  # otherwise the family decides None and nothing stands: no change
            touched.setdefault(slot, touch)  # `batch.touch`, inlined
    touched.setdefault((INJECTION_SITE.name, anchor), touch)


def apply_injection_site(
    config: StudyConfig, participant: ParticipantState, batch: Batch, report: InjectionSiteReported
) -> None:
    """Store a diary injection-site report and mark its slot."""
    reaction = injection_site.diary_facts(config, report)
    participant.injection_sites[reaction.anchor] = reaction
    batch.touch(slot_key(INJECTION_SITE.name, reaction.anchor), _touch(report))


def apply_dose(participant: ParticipantState, study: StudyState, batch: Batch, dose: DoseRecorded) -> None:
    """Store an exposure record; keep the first dose and the study's dosed participants current."""
    first_dose = participant.first_dose
    participant.record_dose(DoseFact(dose.occurred_at, dose.given, dose.source))
    if participant.first_dose != first_dose:
        batch.dosing = _touch(dose)
    if participant.first_dose is None:
        study.dosed.discard(participant.subject_id)
    else:
        study.dosed.add(participant.subject_id)
    batch.touch(_ADHERENCE_SLOT, _touch(dose))


def apply_submission(study: StudyState, subject_id: str, report: RegulatorySubmissionRecorded) -> None:
    """A REG record stops the named clock of the AE it references (REGAEREF = ae_id, SAFETY_RULES §5)."""
    study.submit(subject_id, report.ae_ref, report.clock)
