"""One laboratory or vital-sign result, whatever its format, as a canonical event.

HL7 OBX, FHIR Observation and SDTM LB/VS all end here: a `ResultProfile` says what the result is (test,
unit and limits, converted once per distinct combination and cached on the HL7 hot path), a `ResultInput`
what this one result says. Accepted-but-not-gradable values set `data_issue` (INTERFACES §2); they are
never rejections. Cancelled results carry no value (SAFETY_RULES §6 "Status").
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from services.ingest.domain.age import AgeUnit
from services.ingest.domain.context import RecordContext
from services.ingest.domain.quantities import Reading, measure
from services.ingest.domain.terminology import Conversion, Terminology
from shared.events import Event, LabResultRecorded, VitalSignRecorded
from shared.events.clinical import Comparator, ResultStatus
from shared.events.construct import construct

_UNGRADED = frozenset(("preliminary", "deleted", "cancelled"))
_MISSING = "value missing"


class ResultProfile(NamedTuple):
    """What a result is: its test, its unit as sent and how that converts, its limits in canonical unit."""

    test: str
    loinc: str | None
    vital: bool
    original_unit: str | None
    conversion: Conversion | None
    unit: str | None
    ref_low: Decimal | None
    ref_high: Decimal | None
    unit_issue: str | None


def result_profile(
    terminology: Terminology,
    test: str,
    loinc: str | None,
    unit: str | None,
    limits: tuple[Decimal | None, Decimal | None],
) -> ResultProfile:
    """Look up the unit of `test` (DOMAIN §9.3) and convert the reference limits with the same factor."""
    family = terminology.test_family[test]
    _, _, canonical, low, high, issue = measure(test, family, (None, None, None), unit, limits)
    conversion = family.conversion(unit) if unit else None
    vital = test in terminology.vital_tests
    return ResultProfile(test, loinc, vital, unit, conversion, canonical, low, high, issue)


class ResultInput(NamedTuple):
    """What one result says, besides its profile."""

    profile: ResultProfile
    reading: Reading
    original_value: str
    status: ResultStatus
    occurred_at: datetime
    specimen_id: str
    result_key: str
    status_issue: str | None = None


def _issue(status: ResultStatus, issue: str | None) -> str | None:
    """Deleted and cancelled results raise no issue; a missing value matters only when final or corrected."""
    if issue is None or status in ("deleted", "cancelled"):
        return None
    if issue == _MISSING:
        return None if status in _UNGRADED else f"value missing for a {status} result"
    return issue


def canonical_reading(
    profile: ResultProfile, status: ResultStatus, reading: Reading, status_issue: str | None
) -> Reading:
    """A reading in its profile's canonical unit, with the issue the event carries (none for a cancelled
    result's value, which is dropped)."""
    value, comparator, issue = reading
    conversion = profile.conversion
    if status == "cancelled" or conversion is None:
        value = comparator = None
    elif value is not None and not conversion.identity:
        value = conversion.apply(value)
    issue = issue or profile.unit_issue
    if issue is not None or status_issue is not None:
        issue = status_issue or _issue(status, issue)
    return value, comparator, issue


def result_event(ctx: RecordContext, result: ResultInput, source: str, ordinal: int) -> Event:
    """A LabResultRecorded, or a VitalSignRecorded for a vital-sign test (body temperature)."""
    profile, status = result.profile, result.status
    value, comparator, issue = canonical_reading(profile, status, result.reading, result.status_issue)
    if profile.vital:
        fields = ctx.envelope("vital.sign", source, ordinal, result.occurred_at)
        return vital_event(
            fields, profile, status, value=value, comparator=comparator, original_value=result.original_value,
            result_key=result.result_key, data_issue=issue, age=ctx.age(result.occurred_at),
        )  # fmt: skip
    return lab_event(
        ctx.lab_result_fields(source, ordinal, result.occurred_at),
        profile,
        status,
        value=value,
        comparator=comparator,
        original_value=result.original_value,
        specimen_id=result.specimen_id,
        result_key=result.result_key,
        data_issue=issue,
    )


def vital_event(
    fields: dict[str, Any],
    profile: ResultProfile,
    status: ResultStatus,
    *,
    value: Decimal | None,
    comparator: Comparator | None,
    original_value: str,
    result_key: str,
    data_issue: str | None,
    age: tuple[int, AgeUnit] | None = None,
) -> VitalSignRecorded:
    """The VitalSignRecorded of a temperature, `fields` its envelope (`RecordContext.envelope`), its value
    already in the canonical unit (shared by the general path and the records fast path)."""
    if comparator is not None and data_issue is None:
        data_issue = f"value {original_value!r} is qualified ({comparator}), not a measurement"
    fields["test"] = profile.test
    fields["value"] = value
    fields["unit"] = profile.unit if status != "cancelled" else None
    fields["original_value"] = original_value
    fields["original_unit"] = profile.original_unit
    fields["status"] = status
    fields["result_key"] = result_key
    fields["data_issue"] = data_issue
    fields["age_at_collection"], fields["age_unit"] = age or (None, None)
    return construct(VitalSignRecorded, fields)


def lab_event(
    fields: dict[str, Any],
    profile: ResultProfile,
    status: ResultStatus,
    *,
    value: Decimal | None,
    comparator: Comparator | None,
    original_value: str,
    specimen_id: str,
    result_key: str,
    data_issue: str | None,
) -> LabResultRecorded:
    """The LabResultRecorded of a laboratory result, `fields` from `RecordContext.lab_result_fields`, its
    value already in the profile's canonical unit (shared by the general path and the HL7 fast path)."""
    cancelled = status == "cancelled"
    fields["test"] = profile.test
    fields["loinc"] = profile.loinc
    fields["value"] = value
    fields["comparator"] = comparator
    fields["unit"] = None if cancelled else profile.unit
    fields["original_value"] = original_value
    fields["original_unit"] = profile.original_unit
    fields["ref_low"] = None if cancelled else profile.ref_low
    fields["ref_high"] = None if cancelled else profile.ref_high
    fields["status"] = status
    fields["specimen_id"] = specimen_id
    fields["result_key"] = result_key
    fields["derived"] = False
    fields["data_issue"] = data_issue
    return construct(LabResultRecorded, fields)
