"""Regulatory clocks as the notifier sees them (SAFETY_RULES §5): reminders before due_at, and the REG
record (INTERFACES §1.3) that a submission publishes for ingest, which stops the engine's clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events.envelope import deterministic_id, utc_iso

BREACH = "CLOCK-BREACH"
REC_PREFIX = "REC:"


class NotAClockError(ValueError):
    """The signal is no clock whose submission can be recorded."""


class RegRecord(BaseModel):
    """A REG record (INTERFACES §1.3), one NDJSON object on trialwatch.in.records: it stops a clock."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    DOMAIN: Literal["REG"] = Field(default="REG", description="Record domain")
    STUDYID: str = Field(description="Study identifier")
    USUBJID: str | None = Field(description="Participant of the adverse event")
    RECID: str = Field(description="Record id, derived from study, clock and AE: a resend is a duplicate")
    REGCLOCK: Literal["SPONSOR-24H", "IND-7D", "IND-15D"] = Field(description="The clock the submission stops")
    REGAEREF: str = Field(description="RECID of the AE record, or the FHIR AdverseEvent id")
    REGDTC: str = Field(description="When the report was submitted (ISO 8601 UTC)")


def reminder_times(due_at: datetime, offsets: Iterable[timedelta], now: datetime) -> list[tuple[timedelta, datetime]]:
    """(offset, when) for every configured offset still ahead of ``now``, earliest first."""
    times = [(offset, due_at - offset) for offset in offsets]
    return sorted(((offset, at) for offset, at in times if at > now), key=lambda pair: pair[1])


def describe_offset(offset: timedelta) -> str:
    seconds = int(offset.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def ae_reference(signal: Mapping[str, Any]) -> str:
    """REGAEREF: the AE id the clock runs for (``detail.ae_id``), else the RECID of its AE evidence."""
    ae_id = signal.get("detail", {}).get("ae_id")
    if isinstance(ae_id, str) and ae_id:
        return ae_id
    for source in signal.get("evidence", []):
        parts = str(source).split(":")
        if len(parts) == 4 and parts[0] + ":" == REC_PREFIX and parts[2] == "AE":
            return parts[3]
    raise NotAClockError(f"signal {signal['signal_id']} names no adverse event (detail.ae_id or AE evidence)")


def clock_of(signal: Mapping[str, Any], clocks: Iterable[str]) -> str:
    """REGCLOCK: the clock itself, or for a CLOCK-BREACH the clock that breached."""
    rule_id = str(signal["rule_id"])
    clock = str(signal.get("detail", {}).get("clock", "")) if rule_id == BREACH else rule_id
    if clock not in set(clocks):
        raise NotAClockError(f"signal {signal['signal_id']} ({rule_id}) is not a regulatory clock")
    return clock


def reg_record(signal: Mapping[str, Any], clocks: Iterable[str], submitted_at: datetime) -> RegRecord:
    """The REG record of a clock signal (REGAEREF from its evidence/detail)."""
    clock = clock_of(signal, clocks)
    ae_ref = ae_reference(signal)
    return RegRecord.model_validate(
        {
            "STUDYID": signal["study_id"],
            "USUBJID": signal.get("subject_id"),
            "RECID": "REG-" + deterministic_id("reg", str(signal["study_id"]), clock, ae_ref),
            "REGCLOCK": clock,
            "REGAEREF": ae_ref,
            "REGDTC": utc_iso(submitted_at),
        }
    )
