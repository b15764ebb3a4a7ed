"""AE, LB and VS records (INTERFACES §1.3 table) -> canonical events.

LB result identity (what an LBSTAT C/D/W record replaces) is (USUBJID, LBREFID, LBTESTCD), else the RECID;
its specimen LBREFID, else (USUBJID, LBDTC) (SAFETY_RULES §6).
"""

from __future__ import annotations

import functools

from services.ingest.domain.context import RecordContext
from services.ingest.domain.model import InputError
from services.ingest.domain.quantities import parse_qualified
from services.ingest.domain.record_fields import (
    Record,
    code,
    flags,
    grade,
    limit,
    limit_value,
    moment,
    original,
    required_code,
    required_moment,
    required_text,
    text,
)
from services.ingest.domain.results import ResultInput, ResultProfile, result_event, result_profile
from services.ingest.domain.terminology import Terminology
from shared.events import AdverseEventReported, Event
from shared.events.clinical import SeriousnessCriterion
from shared.events.construct import construct

CRITERIA: tuple[tuple[SeriousnessCriterion, SeriousnessCriterion], ...] = tuple(
    (name, name) for name in ("AESER", "AESDTH", "AESLIFE", "AESHOSP", "AESDISAB", "AESCONG", "AESMIE")
)


def adverse_event(data: Record, ctx: RecordContext, source: str, terminology: Terminology) -> list[Event]:
    """SDTM AE: verbatim term, MedDRA coding, CTCAE grade, SAE flags, causality and outcome as sent."""
    fields = ctx.envelope("adverse.event", source, 1, required_moment(data, "AESTDTC"))
    criteria = flags(data, CRITERIA)
    fields.update(
        ae_id=required_code(data, "RECID"),
        term=required_text(data, "AETERM"),
        decod=text(data, "AEDECOD"),
        meddra_code=code(data, "AELLTCD") or code(data, "AEPTCD"),
        soc=text(data, "AESOC"),
        soc_code=code(data, "AESOCCD"),
        grade=grade(data, "AETOXGR"),
        criteria=criteria,
        causality=text(data, "AEREL"),
        outcome=text(data, "AEOUT"),
        ended_at=moment(data, "AEENDTC"),
    )
    return [construct(AdverseEventReported, fields)]


def _lab_test(data: Record, terminology: Terminology) -> str | None:
    """LBTESTCD when it is a known lab test, else the test of LBLOINC; None for any other test."""
    test_code = text(data, "LBTESTCD")
    loinc = text(data, "LBLOINC")
    if test_code is None and loinc is None:
        raise InputError("LBTESTCD", "missing required key (nor is LBLOINC given)")
    if test_code in terminology.test_family and test_code not in terminology.vital_tests:
        return test_code
    by_loinc = terminology.loinc_to_test.get(loinc) if loinc is not None else None
    return by_loinc if by_loinc not in terminology.vital_tests else None


_SCALARS = (str, int, float, type(None))


def _limit(data: Record, key: str) -> object:
    """A reference limit as sent, once its JSON type is known to be right (the cache key of its profile)."""
    value = data.get(key)
    return value if type(value) in _SCALARS else limit(data, key)


@functools.lru_cache(maxsize=4096)
def _lab_profile(
    terminology: Terminology, test: str, loinc: str | None, unit: str | None, limits: tuple[object, object]
) -> ResultProfile:
    """Cached on the limits as sent: an LB stream repeats a few (test, unit, limits) combinations."""
    low, high = limit_value(limits[0], "LBORNRLO"), limit_value(limits[1], "LBORNRHI")
    return result_profile(terminology, test, loinc, unit, (low, high))


def lab_result(data: Record, ctx: RecordContext, source: str, terminology: Terminology) -> list[Event]:
    """SDTM LB: one result; LBSTAT F, C, P, D, W (HL7 table 0085 codes), default F."""
    test = _lab_test(data, terminology)
    if test is None:
        return []
    occurred_at = required_moment(data, "LBDTC")
    status_code = text(data, "LBSTAT") or "F"
    status = terminology.hl7_status.get(status_code)
    if status is None:
        raise InputError("LBSTAT", f"{status_code!r} is not a result status (F, C, P, D, W)")
    value = original(data, "LBORRES")
    specimen = text(data, "LBREFID")
    subject_prefix = f"LB:{ctx.study_id}:{ctx.subject_id}:"
    limits = (_limit(data, "LBORNRLO"), _limit(data, "LBORNRHI"))
    profile = _lab_profile(terminology, test, text(data, "LBLOINC"), text(data, "LBORRESU"), limits)
    result = ResultInput(
        profile=profile,
        reading=parse_qualified(value),
        original_value=value,
        status=status,
        occurred_at=occurred_at,
        specimen_id=subject_prefix + (specimen or required_text(data, "LBDTC")),
        result_key=f"{subject_prefix}{specimen}:{test}" if specimen else source,
    )
    return [result_event(ctx, result, source, 1)]


@functools.lru_cache(maxsize=256)
def vital_profile(terminology: Terminology, test: str, unit: str | None) -> ResultProfile:
    """The profile of a vital sign in `unit` (cached: a VS stream repeats a few units)."""
    return result_profile(terminology, test, None, unit, (None, None))


def vital_sign(data: Record, ctx: RecordContext, source: str, terminology: Terminology) -> list[Event]:
    """SDTM VS: body temperature (VSTESTCD TEMP); other vital signs are accepted and ignored."""
    test = required_text(data, "VSTESTCD")
    if test not in terminology.vital_tests:
        return []
    value = original(data, "VSORRES")
    result = ResultInput(
        profile=vital_profile(terminology, test, text(data, "VSORRESU")),
        reading=parse_qualified(value),
        original_value=value,
        status="final",
        occurred_at=required_moment(data, "VSDTC"),
        specimen_id=source,
        result_key=source,
    )
    return [result_event(ctx, result, source, 1)]
