"""Small factories of canonical events, shaped as the parsers produce them (INTERFACES §1, §3).

Records (NDJSON) have source `REC:<STUDYID>:<DOMAIN>:<RECID>` and a dedup key per content version;
HL7 messages give one event per OBX with source `HL7:<facility>:<control id>:<set id>` sharing the
message's dedup key. An LB correction is a new record of the same specimen and test, so by default
`result_key` = subject + specimen + test (SAFETY_RULES §6).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from services.safety_rules.domain import Engine, InMemoryStateStore, StudyConfig, packaged_study
from shared.events import (
    AdverseEventReported,
    ClinicalEvent,
    DoseRecorded,
    DsmbDecisionRecorded,
    InjectionSiteReported,
    LabResultRecorded,
    RegulatorySubmissionRecorded,
    Signal,
    VitalSignRecorded,
    deterministic_id,
)

STUDIES = Path(__file__).resolve().parents[2] / "studies"
STUDY = "ANAKINRA-AD"
SUBJECT = "AD-001"
T0 = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
DOSE_DAY = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
UNITS = {
    "NEUT": "10*9/L",
    "WBC": "10*9/L",
    "PLAT": "10*9/L",
    "LYM": "10*9/L",
    "NEUTLE": "%",
    "NEUTBLE": "%",
    "HGB": "g/L",
    "ALT": "U/L",
    "AST": "U/L",
    "ALP": "U/L",
    "BILI": "umol/L",
    "CREAT": "umol/L",
}
Record = list[ClinicalEvent]


def hours(n: float) -> timedelta:
    """A duration in hours."""
    return timedelta(hours=n)


def _dec(value: str | float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _envelope(domain: str, recid: str, subject: str | None, at: datetime, version: int, **extra: Any) -> dict[str, Any]:
    source = f"REC:{STUDY}:{domain}:{recid}"
    dedup = f"{source}#v{version}"
    return {
        "event_id": deterministic_id(dedup),
        "study_id": STUDY,
        "subject_id": subject,
        "occurred_at": at,
        "recorded_at": extra.pop("recorded_at", None) or at,
        "source": source,
        "dedup_key": dedup,
        **extra,
    }


def lab(
    test: str,
    value: str | float | None,
    *,
    recid: str | None = None,
    subject: str = SUBJECT,
    at: datetime = T0,
    status: str = "final",
    lln: str | float | None = None,
    uln: str | float | None = None,
    unit: str | None = "default",
    comparator: str | None = None,
    specimen: str | None = None,
    data_issue: str | None = None,
    version: int = 1,
    derived: bool = False,
) -> Record:
    """One LB record (one result)."""
    recid = recid or f"LB-{subject}-{test}-{at:%Y%m%d%H%M}"
    specimen = specimen or f"SPC-{subject}-{at:%Y%m%d%H%M}"
    event = LabResultRecorded(
        **_envelope("LB", recid, subject, at, version),
        test=test,  # type: ignore[arg-type]
        value=_dec(value),
        comparator=comparator,  # type: ignore[arg-type]
        unit=UNITS[test] if unit == "default" else unit,
        original_value="" if value is None else str(value),
        ref_low=_dec(lln),
        ref_high=_dec(uln),
        status=status,  # type: ignore[arg-type]
        specimen_id=specimen,
        result_key=f"{subject}:{specimen}:{test}",
        data_issue=data_issue,
        derived=derived,
    )
    return [event]


def hl7(
    control_id: str,
    results: Sequence[tuple[str, str | float]],
    *,
    subject: str = SUBJECT,
    at: datetime = T0,
    order: str | None = None,
    status: str = "final",
) -> Record:
    """One ORU^R01 message: one OBR (specimen) with an OBX per (test, value)."""
    order = order or f"ORD-{control_id}"
    events: Record = []
    for set_id, (test, value) in enumerate(results, start=1):
        source = f"HL7:LAB:{control_id}:{set_id}"
        events.append(
            LabResultRecorded(
                event_id=deterministic_id(source),
                study_id=STUDY,
                subject_id=subject,
                occurred_at=at,
                recorded_at=at,
                source=source,
                dedup_key=f"HL7:LAB:{control_id}",
                test=test,  # type: ignore[arg-type]
                value=_dec(value),
                unit=UNITS[test],
                original_value=str(value),
                status=status,  # type: ignore[arg-type]
                specimen_id=order,
                result_key=f"LAB:{order}:{test}",
            )
        )
    return events


def temp(
    value: str | float | None,
    *,
    recid: str | None = None,
    subject: str = SUBJECT,
    at: datetime = T0,
    status: str = "final",
    version: int = 1,
    data_issue: str | None = None,
) -> Record:
    """One VS record (body temperature in Cel)."""
    recid = recid or f"VS-{subject}-{at:%Y%m%d%H%M}"
    return [
        VitalSignRecorded(
            **_envelope("VS", recid, subject, at, version),
            value=_dec(value),
            unit="Cel",
            original_value=str(value),
            status=status,  # type: ignore[arg-type]
            result_key=f"{subject}:{recid}",
            data_issue=data_issue,
        )
    ]


def ae(
    ae_id: str,
    term: str,
    *,
    subject: str = SUBJECT,
    at: datetime = T0,
    recorded_at: datetime | None = None,
    decod: str | None = None,
    meddra: str | None = None,
    soc: str | None = None,
    soc_code: str | None = None,
    grade: int | None = None,
    criteria: dict[str, bool] | None = None,
    causality: str | None = None,
    outcome: str | None = None,
    version: int = 1,
) -> Record:
    """One AE record; the same ae_id with a higher version is an update."""
    return [
        AdverseEventReported(
            **_envelope("AE", ae_id, subject, at, version, recorded_at=recorded_at),
            ae_id=ae_id,
            term=term,
            decod=decod,
            meddra_code=meddra,
            soc=soc,
            soc_code=soc_code,
            grade=grade,
            criteria=criteria or {},  # type: ignore[arg-type]
            causality=causality,
            outcome=outcome,
        )
    ]


def isr(
    recid: str, findings: Iterable[str], *, grade: int | None = None, subject: str = SUBJECT, at: datetime = T0
) -> Record:
    """One ISR diary record with the findings reported as Y."""
    return [
        InjectionSiteReported(
            **_envelope("ISR", recid, subject, at, 1), findings=dict.fromkeys(findings, True), grade=grade
        )
    ]


def dose(
    at: datetime = DOSE_DAY, *, given: bool = True, subject: str = SUBJECT, recid: str | None = None, version: int = 1
) -> Record:
    """One EX record."""
    recid = recid or f"EX-{subject}-{at:%Y%m%d}"
    return [DoseRecorded(**_envelope("EX", recid, subject, at, version), given=given)]


def reg(recid: str, clock: str, ae_ref: str, *, subject: str = SUBJECT, at: datetime = T0) -> Record:
    """One REG record (an expedited report submitted)."""
    return [
        RegulatorySubmissionRecorded(
            **_envelope("REG", recid, subject, at, 1),
            clock=clock,
            ae_ref=ae_ref,
            submitted_at=at,  # type: ignore[arg-type]
        )
    ]


def dsmb(recid: str, decision: str = "RESUME", rule_id: str | None = None, *, at: datetime = T0) -> Record:
    """One DSMB decision record (study level)."""
    return [
        DsmbDecisionRecorded(
            **_envelope("DSMB", recid, None, at, 1),
            decision=decision,
            rule_id=rule_id,  # type: ignore[arg-type]
        )
    ]


def study_doc(name: str = "anakinra-ad.yaml") -> dict[str, Any]:
    """A study configuration of `studies/` as a fresh, editable document."""
    doc: dict[str, Any] = yaml.safe_load((STUDIES / name).read_text(encoding="utf-8"))
    return doc


class Harness:
    """An engine over an in-memory store, fed record by record."""

    def __init__(self, config: StudyConfig | None = None) -> None:
        self.store = InMemoryStateStore()
        self.engine = Engine(config or packaged_study(), self.store)

    def send(self, *records: Record) -> list[Signal]:
        """Process records in order; the signals of all of them (each checked to be a valid Signal: the
        engine builds them without pydantic's validation, `signals.build_signal`)."""
        out: list[Signal] = []
        for record in records:
            out += self.engine.process(record)
        for signal in out:
            assert Signal.model_validate(signal.model_dump()) == signal, signal
        return out

    def dosed(self, subject: str = SUBJECT, at: datetime = DOSE_DAY) -> None:
        """Give the participant a first dose."""
        self.send(dose(at, subject=subject))


def rules(signals: Iterable[Signal]) -> list[str]:
    """Rule ids of RAISED signals, in order."""
    return [s.rule_id for s in signals if s.status == "RAISED"]


def brief(signals: Iterable[Signal]) -> list[tuple[str, str]]:
    """(rule id, status) of each signal, in order."""
    return [(s.rule_id, s.status) for s in signals]
