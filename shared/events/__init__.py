"""Versioned event contracts shared by every TrialWatch service."""

from __future__ import annotations

from pydantic import ConfigDict, TypeAdapter

from shared.events.clinical import (
    AdverseEventReported,
    ClinicalEvent,
    DispositionRecorded,
    DoseRecorded,
    DsmbDecisionRecorded,
    InjectionSiteReported,
    LabResultRecorded,
    RegulatorySubmissionRecorded,
    VitalSignRecorded,
)
from shared.events.envelope import Event, deterministic_id, utc_iso
from shared.events.record import RecordIngested
from shared.events.signal import AlertChanged, Signal

# built on first use, as the models are (envelope.MODEL_CONFIG)
CLINICAL_EVENT_ADAPTER: TypeAdapter[ClinicalEvent] = TypeAdapter(ClinicalEvent, config=ConfigDict(defer_build=True))

__all__ = [
    "CLINICAL_EVENT_ADAPTER",
    "AdverseEventReported",
    "AlertChanged",
    "ClinicalEvent",
    "DispositionRecorded",
    "DoseRecorded",
    "DsmbDecisionRecorded",
    "Event",
    "InjectionSiteReported",
    "LabResultRecorded",
    "RecordIngested",
    "RegulatorySubmissionRecorded",
    "Signal",
    "VitalSignRecorded",
    "deterministic_id",
    "utc_iso",
]
