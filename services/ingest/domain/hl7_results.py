"""OBR (one specimen) and OBX (one result) segments of an ORU^R01 message (INTERFACES §1.1, DOMAIN §9.1).

This is the hot path of `trialwatch replay`: plain `str.split`, cached lookups, no regular expressions.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import NamedTuple

from services.ingest.domain.context import RecordContext
from services.ingest.domain.hl7_header import Header
from services.ingest.domain.model import InputError
from services.ingest.domain.quantities import (
    Reading,
    canonical_number,
    parse_number,
    parse_qualified,
    parse_reference_range,
    parse_structured_numeric,
)
from services.ingest.domain.results import ResultInput, ResultProfile, lab_event, result_profile
from services.ingest.domain.terminology import Terminology, UnitFamily
from services.ingest.domain.times import hl7_time
from shared.events import LabResultRecorded
from shared.events.clinical import ResultStatus

_LOINC_SYSTEMS = frozenset(("LN", "LOINC", "http://loinc.org", ""))
_MISSING: Reading = (None, None, "value missing")


class Order(NamedTuple):
    """One OBR: the specimen its results belong to (OBR-3 filler order number) and its collection time."""

    specimen_id: str
    collected_at: datetime | None
    status: str


def _time_field(text: str, name: str) -> datetime | None:
    text = text.strip()
    if not text:
        return None
    moment = hl7_time(text)
    if moment is None:
        raise InputError(name, f"{text!r} is not an HL7 date/time (YYYYMMDD[HHMM[SS]][+/-ZZZZ])")
    return moment


def read_order(segment: str, header: Header, ordinal: int) -> Order:
    """OBR-3 (else OBR-2, else the OBR's position) identifies the specimen; OBR-7 is its collection time."""
    fields = segment.split(header.field_sep)
    fields += [""] * (26 - len(fields))
    component = header.component_sep
    filler = fields[3].split(component, 1)[0].strip() or fields[2].split(component, 1)[0].strip()
    order_id = filler or f"{header.control_id}#OBR{ordinal}"
    return Order(
        specimen_id=f"HL7:{header.facility}:{order_id}",
        collected_at=_time_field(fields[7], "OBR-7"),
        status=fields[25].split(component, 1)[0].strip(),
    )


@functools.lru_cache(maxsize=4096)
def loinc_code(identifier: str, component: str) -> str | None:
    """The LOINC code of an OBX-3 CWE: the identifier when its system is LN, else the alternate (4-6)."""
    parts = identifier.split(component)
    code = parts[0].strip()
    system = parts[2].strip() if len(parts) > 2 else ""
    if code and system in _LOINC_SYSTEMS:
        return code
    if len(parts) > 5 and parts[5].strip() in _LOINC_SYSTEMS and parts[3].strip():
        return parts[3].strip()
    return None


@functools.lru_cache(maxsize=8192)
def observation_profile(
    terminology: Terminology, identifier: str, unit_field: str, range_field: str, component: str
) -> ResultProfile | None:
    """Test, unit and limits of an OBX (OBX-3, OBX-6, OBX-7); None for a code that is not a known LOINC.

    Cached: a laboratory sends the same few combinations over and over.
    """
    loinc = loinc_code(identifier, component)
    test = terminology.loinc_to_test.get(loinc) if loinc is not None else None
    if test is None:
        return None
    unit = _unit(unit_field, component, terminology.test_family[test])
    return result_profile(terminology, test, loinc, unit, parse_reference_range(range_field))


def _unit(field: str, component: str, family: UnitFamily) -> str | None:
    """OBX-6: the CE identifier (`g/dL^grams per deciliter^UCUM`), unless the unit itself holds the
    component separator, as `10^9/L` sent unescaped does (or escaped as `10\\S\\9/L`, HL7 §2.7)."""
    field = field.replace("\\S\\", component).strip()
    parts = field.split(component)
    for candidate in (field, parts[0], component.join(parts[:2])):
        if candidate and family.conversion(candidate) is not None:
            return candidate
    return parts[0].strip() or None


def _reading(value_type: str, value: str, component: str) -> Reading:
    if value_type == "NM":
        number = parse_number(value)
        if number is not None:
            return number, None, None
        return (None, None, f"value {value!r} is not numeric") if value.strip() else _MISSING
    if value_type == "SN":
        return parse_structured_numeric(value, component)
    return parse_qualified(value)


def _status(code: str, order: Order, terminology: Terminology) -> tuple[ResultStatus, str | None]:
    """OBX-11 (HL7 table 0085); an empty one takes the order's OBR-25, else final."""
    field = "OBX-11"
    if not code:
        code, field = order.status or "F", "OBR-25"
    status = terminology.hl7_status.get(code)
    if status is None:
        return "preliminary", f"{field} status {code!r} is not in HL7 table 0085"
    return status, None


def read_observation(
    fields: list[str], header: Header, order: Order, profile: ResultProfile, terminology: Terminology
) -> ResultInput:
    """What an OBX of a recognised LOINC test (`profile`, from `observation_profile`) says: the general path."""
    component = header.component_sep
    status = terminology.hl7_status.get(fields[11])  # the usual case, else the careful way
    status_issue = None
    if status is None:
        status, status_issue = _status(fields[11].strip(), order, terminology)
    occurred_at = order.collected_at or _time_field(fields[14], "OBX-14") or header.sent_at
    if occurred_at is None:
        raise InputError("OBR-7", "no collection time: OBR-7, OBX-14 and MSH-7 are all empty")
    return ResultInput(
        profile,
        _reading(fields[2].strip(), fields[5], component),
        fields[5],
        status,
        occurred_at,
        order.specimen_id,
        f"{order.specimen_id}:{profile.test}",
        status_issue,
    )


def usual_lab_event(
    fields: list[str],
    order: Order,
    profile: ResultProfile,
    terminology: Terminology,
    context: RecordContext,
    *,
    source: str,
    ordinal: int,
) -> LabResultRecorded | None:
    """The fast path: the event of the usual OBX, or None for any other (then `read_observation` and
    `result_event` decide). Usual: a laboratory test in a known unit, value type NM holding a number, an
    OBX-11 status other than cancelled, an OBR-7 collection time. Such a result has no data issue, so
    this is what the general path gives (tests/ingest/test_ingest_fast_paths.py checks it does)."""
    conversion = profile.conversion
    collected_at = order.collected_at
    if fields[2] != "NM" or conversion is None or profile.vital or collected_at is None:
        return None
    status = terminology.hl7_status.get(fields[11])
    value = canonical_number(fields[5], conversion)
    if status is None or status == "cancelled" or value is None:
        return None
    return lab_event(
        context.lab_result_fields(source, ordinal, collected_at),
        profile,
        status,
        value=value,
        comparator=None,
        original_value=fields[5],
        specimen_id=order.specimen_id,
        result_key=f"{order.specimen_id}:{profile.test}",
        data_issue=None,
    )
