"""FHIR R4 Observation (lab result or body temperature) -> canonical events (INTERFACES §1.2).

Result identity (what a correction replaces) is the Observation id; the specimen is `specimen.reference`,
else (subject, effective time) (SAFETY_RULES §6). An unknown LOINC code is accepted and yields nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.ingest.domain.context import RecordContext
from services.ingest.domain.fhir_fields import (
    codings,
    element,
    elements,
    instant,
    recorded_at,
    string,
    subject_id,
)
from services.ingest.domain.model import InputError, ParserConfig
from services.ingest.domain.quantities import Reading, number_of, parse_qualified
from services.ingest.domain.results import ResultInput, result_event, result_profile
from services.ingest.domain.terminology import Terminology, UnitFamily
from shared.events import Event, utc_iso
from shared.events.clinical import Comparator, ResultStatus

_LOINC = "http://loinc.org"
_COMPARATORS: dict[str, Comparator] = {"<": "<", "<=": "<=", ">": ">", ">=": ">="}
_NOT_SINGLE = {
    "valueRange": "is a range, not a single result",
    "valueRatio": "is a ratio, not a single result",
    "valueCodeableConcept": "is coded, not numeric",
    "valueBoolean": "is a boolean, not numeric",
    "valueSampledData": "is sampled data, not a single result",
}


def test_of(resource: dict[str, Any], terminology: Terminology) -> tuple[str, str] | None:
    """(canonical test, LOINC code) of the first recognised LOINC coding in `code`."""
    for coding in codings(resource, "code", "code"):
        system = coding.get("system")
        code = coding.get("code")
        if system in (_LOINC, None) and isinstance(code, str) and code in terminology.loinc_to_test:
            return terminology.loinc_to_test[code], code
    return None


def _status(resource: dict[str, Any], terminology: Terminology) -> ResultStatus:
    code = string(resource, "status", "status")
    if code is None:
        raise InputError("status", "missing")
    status = terminology.fhir_status.get(code)
    if status is None:
        raise InputError("status", f"{code!r} is not an R4 ObservationStatus")
    return status


def _unit(quantity: dict[str, Any], family: UnitFamily, path: str) -> str | None:
    """The UCUM `code` when recognised, else the display `unit`, else whatever was sent."""
    code = string(quantity, "code", f"{path}.code")
    unit = string(quantity, "unit", f"{path}.unit")
    if code is not None and family.conversion(code) is not None:
        return code
    return unit or code


def _quantity_reading(quantity: dict[str, Any]) -> tuple[Reading, str]:
    raw = quantity.get("value")
    if raw is None:
        return (None, None, "value missing"), ""
    original = raw if isinstance(raw, str) else repr(raw)
    number = number_of(raw)
    if number is None:
        return (None, None, f"value {original!r} is not numeric"), original
    comparator_code = string(quantity, "comparator", "valueQuantity.comparator")
    comparator = _COMPARATORS.get(comparator_code) if comparator_code is not None else None
    if comparator_code is not None and comparator is None:
        raise InputError("valueQuantity.comparator", f"{comparator_code!r} is not one of < <= > >=")
    return (number, comparator, None), original


def _reading(resource: dict[str, Any]) -> tuple[Reading, str]:
    quantity = element(resource, "valueQuantity", "valueQuantity")
    if quantity is not None:
        return _quantity_reading(quantity)
    text = string(resource, "valueString", "valueString")
    if text is not None:
        return parse_qualified(text), text
    integer = resource.get("valueInteger")
    if isinstance(integer, int) and not isinstance(integer, bool):
        return (Decimal(integer), None, None), str(integer)
    for name, issue in _NOT_SINGLE.items():
        if name in resource:
            return (None, None, f"{name} {issue}"), ""
    return (None, None, "value missing"), ""


def _limits(resource: dict[str, Any], family: UnitFamily, unit: str | None) -> tuple[Decimal | None, Decimal | None]:
    """referenceRange[0] low/high, kept only when stated in the value's unit (or with no unit)."""
    ranges = elements(resource, "referenceRange", "referenceRange")
    if not ranges:
        return None, None
    expected = family.conversion(unit) if unit else None
    limits: list[Decimal | None] = []
    for name in ("low", "high"):
        quantity = element(ranges[0], name, f"referenceRange[0].{name}")
        limit = number_of(quantity.get("value")) if quantity is not None else None
        limit_unit = _unit(quantity, family, f"referenceRange[0].{name}") if quantity is not None else None
        if limit_unit is not None and family.conversion(limit_unit) != expected:
            limit = None
        limits.append(limit)
    return limits[0], limits[1]


def effective_time(resource: dict[str, Any]) -> datetime:
    """effectiveDateTime, effectiveInstant or effectivePeriod.start: the collection time."""
    moment = instant(resource, "effectiveDateTime", "effectiveDateTime") or instant(
        resource, "effectiveInstant", "effectiveInstant"
    )
    period = element(resource, "effectivePeriod", "effectivePeriod")
    if moment is None and period is not None:
        moment = instant(period, "start", "effectivePeriod.start")
    if moment is None:
        raise InputError("effectiveDateTime", "missing (no effective[x] collection time)")
    return moment


def observation_events(
    resource: dict[str, Any],
    config: ParserConfig,
    key: str,
    resource_id: str,
    received_at: datetime | None,
    *,
    bundle_subjects: Mapping[str, str],
) -> list[Event]:
    """The one lab or vital-sign event of a recognised Observation (none for an unknown LOINC code)."""
    terminology = config.terminology
    found = test_of(resource, terminology)
    if found is None:
        return []
    test, loinc = found
    ctx = RecordContext(
        config.default_study_id,
        subject_id(resource, bundle_subjects),
        key,
        recorded_at(resource, received_at),
        event_ids=config.event_ids,
    )
    family = terminology.test_family[test]
    reading, original = _reading(resource)
    quantity = element(resource, "valueQuantity", "valueQuantity")
    unit = _unit(quantity, family, "valueQuantity") if quantity is not None else None
    occurred_at = effective_time(resource)
    specimen = element(resource, "specimen", "specimen")
    specimen_id = string(specimen, "reference", "specimen.reference") if specimen is not None else None
    result = ResultInput(
        profile=result_profile(terminology, test, loinc, unit, _limits(resource, family, unit)),
        reading=reading,
        original_value=original,
        status=_status(resource, terminology),
        occurred_at=occurred_at,
        specimen_id=specimen_id or f"FHIR:{ctx.subject_id}:{utc_iso(occurred_at)}",
        result_key=f"FHIR:Observation/{resource_id}",
    )
    return [result_event(ctx, result, ctx.dedup_key, 1)]
