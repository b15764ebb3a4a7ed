"""Signals for the notifier tests (INTERFACES §3 objects), built by hand."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.events import DsmbDecisionRecorded, LabResultRecorded, RecordIngested, Signal
from shared.events.signal import Action, Severity

STUDY = "ANAKINRA-AD"
T0 = datetime(2026, 3, 2, 8, 15, tzinfo=UTC)


def make_signal(
    rule_id: str,
    severity: Severity,
    *,
    subject: str | None = "AD-003",
    action: Action = "NONE",
    observed_at: datetime = T0,
    due_at: datetime | None = None,
    detail: dict[str, Any] | None = None,
    evidence: list[str] | None = None,
    status: str = "RAISED",
    retracts: str | None = None,
) -> Signal:
    return Signal.model_validate(
        {
            "signal_id": str(uuid.uuid4()),
            "study_id": STUDY,
            "subject_id": subject,
            "rule_id": rule_id,
            "severity": severity,
            "action": action,
            "status": status,
            "observed_at": observed_at,
            "evidence": evidence or [f"REC:{STUDY}:LB:{uuid.uuid4().hex[:8]}"],
            "detail": detail or {"grade": 3, "value": 0.8, "unit": "10*9/L"},
            "due_at": due_at,
            "retracts": retracts,
        }
    )


def anc3(subject: str = "AD-003") -> Signal:
    return make_signal("LAB-ANC-3", "URGENT", subject=subject, action="HOLD_DOSE")


def anc2(subject: str = "AD-003") -> Signal:
    return make_signal("LAB-ANC-2", "NOTIFY", subject=subject, action="REPEAT_LAB")


def halt(rule_id: str = "H-NEUT") -> Signal:
    return make_signal(rule_id, "HALT", subject=None, action="PAUSE_STUDY", detail={"count": 2, "n": 8})


def sponsor_clock(ae_id: str = "AE-004-1", due_in: timedelta = timedelta(hours=24), now: datetime = T0) -> Signal:
    return make_signal(
        "SPONSOR-24H",
        "URGENT",
        subject="AD-004",
        observed_at=now,
        due_at=now + due_in,
        detail={"ae_id": ae_id, "term": "Stevens-Johnson syndrome", "serious": True},
        evidence=[f"REC:{STUDY}:AE:{ae_id}"],
    )


def dsmb_resume(rule_id: str | None, at: datetime) -> RecordIngested:
    """A DSMB RESUME record as ingest publishes it on trialwatch.events.v1."""
    record_id = f"DSMB-{uuid.uuid4().hex[:8]}"
    source = f"REC:{STUDY}:DSMB:{record_id}"
    decision = DsmbDecisionRecorded(
        event_id=str(uuid.uuid4()),
        study_id=STUDY,
        subject_id=None,
        occurred_at=at,
        recorded_at=at,
        source=source,
        dedup_key=source,
        decision="RESUME",
        rule_id=rule_id,
    )
    return RecordIngested(
        record_id=str(uuid.uuid4()),
        dedup_key=source,
        study_id=STUDY,
        received_at=at,
        channel="kafka",
        events=[decision],
    )


def lab_record(index: int) -> RecordIngested:
    """An ordinary ingested record: a lab result, no DSMB decision."""
    source = f"REC:{STUDY}:LB:L-{index}"
    lab = LabResultRecorded.model_validate(
        {
            "event_id": f"e-{index}",
            "study_id": STUDY,
            "subject_id": "AD-003",
            "occurred_at": T0,
            "recorded_at": T0,
            "source": source,
            "dedup_key": source,
            "test": "NEUT",
            "value": "0.8",
            "unit": "10*9/L",
            "original_value": "0.8",
            "status": "final",
            "specimen_id": f"S-{index}",
            "result_key": f"LAB1:S-{index}:NEUT",
        }
    )
    return RecordIngested(
        record_id=f"r-{index}", dedup_key=source, study_id=STUDY, received_at=T0, channel="kafka", events=[lab]
    )
