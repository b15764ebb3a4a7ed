"""Numeric values, comparators, reference ranges and unit conversion, all in Decimal (SAFETY_RULES §1).

A `Reading` is what a result's value says before any unit is applied: `(value, comparator, issue)`.
An issue is never a rejection: it becomes the event's `data_issue` (INTERFACES §2, LAB-DQ).
"""

from __future__ import annotations

import functools
from decimal import Decimal, InvalidOperation

from services.ingest.domain.terminology import Conversion, UnitFamily
from shared.events.clinical import Comparator

Reading = tuple[Decimal | None, Comparator | None, str | None]

_COMPARATORS: dict[str, Comparator] = {"<": "<", "<=": "<=", ">": ">", ">=": ">="}
_SN_RANGE = frozenset("-")
_SN_RATIO = frozenset(":/")


def parse_number(text: str) -> Decimal | None:
    """A finite decimal number (HL7 NM, JSON string or ISO-style text); None when it is not one."""
    if not text or "_" in text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


@functools.lru_cache(maxsize=16384)
def canonical_number(text: str, conversion: Conversion) -> Decimal | None:
    """`parse_number(text)` converted to the canonical unit; cached, as laboratories send the same values
    again and again (and a conversion costs more than the rest of an HL7 result)."""
    value = parse_number(text)
    return value if value is None or conversion.identity else conversion.apply(value)


def number_of(value: object) -> Decimal | None:
    """A JSON number or numeric string as Decimal (floats through their shortest repr, never binary noise)."""
    if isinstance(value, str):
        return parse_number(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return parse_number(repr(value)) if isinstance(value, float) else Decimal(value)


@functools.lru_cache(maxsize=4096)
def parse_qualified(text: str) -> Reading:
    """A number with an optional leading comparator, as in `<0.5` (HL7 ST, SDTM --ORRES); cached, as a
    temperature stream repeats a few hundred values (the reading is immutable)."""
    stripped = text.strip()
    if not stripped:
        return None, None, "value missing"
    comparator: Comparator | None = None
    if stripped[0] in "<>":
        width = 2 if stripped[1:2] == "=" else 1
        comparator = _COMPARATORS[stripped[:width]]
        stripped = stripped[width:].lstrip()
    number = parse_number(stripped)
    if number is None:
        return None, None, f"value {text!r} is not numeric"
    return number, comparator, None


def parse_structured_numeric(text: str, component: str = "^") -> Reading:
    """HL7 SN `comparator^num1^separator^num2`: `<^0.1`, `>^5`, `^12`; a range or ratio is an issue."""
    parts = text.split(component)
    comparator_text = parts[0].strip()
    first = parts[1].strip() if len(parts) > 1 else ""
    separator = parts[2].strip() if len(parts) > 2 else ""
    second = parts[3].strip() if len(parts) > 3 else ""
    if separator or second:
        if separator in _SN_RANGE:
            return None, None, f"SN value {text!r} is a range, not a single result"
        if separator in _SN_RATIO:
            return None, None, f"SN value {text!r} is a ratio, not a single result"
        return None, None, f"SN value {text!r} is not a single number"
    comparator = _COMPARATORS.get(comparator_text)
    if comparator_text not in ("", "=") and comparator is None:
        return None, None, f"SN comparator {comparator_text!r} is not one of < <= > >="
    if not first:
        return None, None, "value missing"
    number = parse_number(first)
    if number is None:
        return None, None, f"SN value {text!r} is not numeric"
    return number, comparator, None


@functools.lru_cache(maxsize=4096)
def parse_reference_range(text: str) -> tuple[Decimal | None, Decimal | None]:
    """HL7 OBX-7 reference range `1.5-8.0`, `>40` (low only), `<0.5` (high only); unreadable: no limits."""
    stripped = text.strip()
    if not stripped:
        return None, None
    if stripped[0] in "<>":
        bound = parse_number(stripped.lstrip("<>=").strip())
        return (None, bound) if stripped[0] == "<" else (bound, None)
    dash = stripped.find("-", 1)
    if dash < 0:
        return None, None
    return parse_number(stripped[:dash].strip()), parse_number(stripped[dash + 1 :].strip())


#: (value, comparator, canonical unit, ref_low, ref_high, issue) — a reading in its test's canonical unit.
Measurement = tuple[Decimal | None, Comparator | None, str | None, Decimal | None, Decimal | None, str | None]


def measure(
    test: str,
    family: UnitFamily,
    reading: Reading,
    unit: str | None,
    limits: tuple[Decimal | None, Decimal | None],
) -> Measurement:
    """Convert a reading and its limits with the same factor (DOMAIN §9.3); an unknown unit is an issue."""
    value, comparator, issue = reading
    conversion = family.conversion(unit) if unit else None
    if conversion is None:
        if issue is None:
            issue = f"unit {unit!r} is not a known unit of {test}" if unit else f"unit missing for {test}"
        return None, None, None, None, None, issue
    low, high = limits
    if conversion.identity:
        return value, comparator, family.canonical, low, high, issue
    return (
        None if value is None else conversion.apply(value),
        comparator,
        family.canonical,
        None if low is None else conversion.apply(low),
        None if high is None else conversion.apply(high),
        issue,
    )
