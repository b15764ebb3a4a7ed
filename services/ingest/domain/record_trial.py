"""EX, ISR, DS, DSMB and REG records (INTERFACES §1.3 table) -> canonical events."""

from __future__ import annotations

from services.ingest.domain.context import RecordContext
from services.ingest.domain.model import InputError
from services.ingest.domain.record_fields import (
    Record,
    choice,
    flag,
    flags,
    grade,
    number,
    required_code,
    required_moment,
    text,
)
from services.ingest.domain.terminology import Terminology
from shared.events import (
    DispositionRecorded,
    DoseRecorded,
    DsmbDecisionRecorded,
    Event,
    InjectionSiteReported,
    RegulatorySubmissionRecorded,
)
from shared.events.construct import construct

#: (ISR finding key, finding name in InjectionSiteReported.findings), in the findings' order.
ISR_FINDINGS = (
    ("ISRTEND", "TEND"),
    ("ISRERYTH", "ERYTH"),
    ("ISRWARM", "WARM"),
    ("ISRITCH", "ITCH"),
    ("ISRPAIN", "PAIN"),
    ("ISREDEMA", "EDEMA"),
    ("ISRLIPO", "LIPO"),
    ("ISRULCER", "ULCER"),
    ("ISRNECR", "NECR"),
)
_DISPOSITIONS = ("ENROLLED", "WITHDRAWN", "COMPLETED")
_DSMB_DECISIONS = ("RESUME", "CONTINUE_PAUSE", "TERMINATE")
_CLOCKS = ("SPONSOR-24H", "IND-7D", "IND-15D")


def dose(data: Record, ctx: RecordContext, source: str, terminology: Terminology) -> list[Event]:
    """SDTM EX: EXOCCUR Y = dose given, N = dose missed (SAFETY_RULES §1 first dose, ADH-EVAL)."""
    given = flag(data, "EXOCCUR")
    if given is None:
        raise InputError("EXOCCUR", "missing required key")
    fields = ctx.envelope("dose", source, 1, required_moment(data, "EXSTDTC"))
    fields.update(given=given, dose=number(data, "EXDOSE"), dose_unit=text(data, "EXDOSU"))
    return [construct(DoseRecorded, fields)]


def injection_site(data: Record, ctx: RecordContext, source: str, terminology: Terminology) -> list[Event]:
    """Participant diary injection-site report: findings as sent, grade only when ISRTOXGR is sent."""
    findings = flags(data, ISR_FINDINGS)
    fields = ctx.envelope("injection.site", source, 1, required_moment(data, "ISRDTC"))
    fields.update(
        location=text(data, "ISRLOC"),
        findings=findings,
        erythema_mm=number(data, "ISRERYMM"),
        grade=grade(data, "ISRTOXGR"),
    )
    return [construct(InjectionSiteReported, fields)]


def disposition(data: Record, ctx: RecordContext, source: str, terminology: Terminology) -> list[Event]:
    """SDTM DS: enrolment, withdrawal or completion."""
    decision = choice(data, "DSDECOD", _DISPOSITIONS)
    fields = ctx.envelope("disposition", source, 1, required_moment(data, "DSSTDTC"))
    fields.update(decision=decision)
    return [construct(DispositionRecorded, fields)]


def dsmb_decision(data: Record, ctx: RecordContext, source: str, terminology: Terminology) -> list[Event]:
    """A DSMB decision; study-level (no subject). DSMBRULE absent = every halting rule."""
    decision = choice(data, "DSMBDEC", _DSMB_DECISIONS)
    fields = ctx.envelope("dsmb.decision", source, 1, required_moment(data, "DSMBDTC"))
    fields.update(decision=decision, rule_id=text(data, "DSMBRULE"))
    return [construct(DsmbDecisionRecorded, fields)]


def regulatory_submission(data: Record, ctx: RecordContext, source: str, terminology: Terminology) -> list[Event]:
    """A submitted expedited report: stops the REGCLOCK clock of the AE named by REGAEREF."""
    clock = choice(data, "REGCLOCK", _CLOCKS)
    ae_ref = required_code(data, "REGAEREF")
    submitted_at = required_moment(data, "REGDTC")
    fields = ctx.envelope("regulatory.submission", source, 1, submitted_at)
    fields.update(clock=clock, ae_ref=ae_ref, submitted_at=submitted_at)
    return [construct(RegulatorySubmissionRecorded, fields)]
