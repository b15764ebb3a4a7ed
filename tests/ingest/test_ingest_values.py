"""Values, comparators, reference ranges and timestamps (INTERFACES §1.1, §3; SAFETY_RULES §6 "Values")."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.ingest.domain.quantities import (
    parse_number,
    parse_qualified,
    parse_reference_range,
    parse_structured_numeric,
)
from services.ingest.domain.times import hl7_time, iso_time

D = Decimal


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<^0.1", (D("0.1"), "<", None)),
        (">^5", (D("5"), ">", None)),
        ("<=^0.5", (D("0.5"), "<=", None)),
        (">=^40", (D("40"), ">=", None)),
        ("^12", (D("12"), None, None)),
        ("=^12", (D("12"), None, None)),
        ("^1^-^5", (None, None, "SN value '^1^-^5' is a range, not a single result")),
        ("^1^:^2", (None, None, "SN value '^1^:^2' is a ratio, not a single result")),
        ("^1^/^2", (None, None, "SN value '^1^/^2' is a ratio, not a single result")),
        ("^2^+", (None, None, "SN value '^2^+' is not a single number")),
        ("<>^5", (None, None, "SN comparator '<>' is not one of < <= > >=")),
        ("<^abc", (None, None, "SN value '<^abc' is not numeric")),
        ("", (None, None, "value missing")),
    ],
)
def test_structured_numeric(text: str, expected: tuple[object, ...]) -> None:
    assert parse_structured_numeric(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.8", (D("0.8"), None, None)),
        (" 12 ", (D("12"), None, None)),
        ("<0.5", (D("0.5"), "<", None)),
        ("< 0.5", (D("0.5"), "<", None)),
        (">=100", (D("100"), ">=", None)),
        ("", (None, None, "value missing")),
        ("haemolysed", (None, None, "value 'haemolysed' is not numeric")),
        ("1,5", (None, None, "value '1,5' is not numeric")),
        ("NaN", (None, None, "value 'NaN' is not numeric")),
        ("Infinity", (None, None, "value 'Infinity' is not numeric")),
    ],
)
def test_string_value_holding_a_number(text: str, expected: tuple[object, ...]) -> None:
    assert parse_qualified(text) == expected


@pytest.mark.parametrize("text", ["", "1_000", "abc", "nan", "-inf", "1.2.3"])
def test_parse_number_refuses_what_is_not_a_finite_decimal(text: str) -> None:
    assert parse_number(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.5-8.0", (D("1.5"), D("8.0"))),
        ("1.5 - 8.0", (D("1.5"), D("8.0"))),
        (">40", (D("40"), None)),
        (">=40", (D("40"), None)),
        ("<0.5", (None, D("0.5"))),
        ("<=0.5", (None, D("0.5"))),
        ("-2-3", (D("-2"), D("3"))),
        ("", (None, None)),
        ("normal", (None, None)),
        ("5", (None, None)),
    ],
)
def test_reference_range(text: str, expected: tuple[object, object]) -> None:
    assert parse_reference_range(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20260302", datetime(2026, 3, 2, tzinfo=UTC)),
        ("2026030208", datetime(2026, 3, 2, 8, tzinfo=UTC)),
        ("202603020815", datetime(2026, 3, 2, 8, 15, tzinfo=UTC)),
        ("20260302081530", datetime(2026, 3, 2, 8, 15, 30, tzinfo=UTC)),
        ("20260302081530.25", datetime(2026, 3, 2, 8, 15, 30, 250000, tzinfo=UTC)),
        ("20260302081500+0100", datetime(2026, 3, 2, 7, 15, tzinfo=UTC)),
        ("20260302081500-0500", datetime(2026, 3, 2, 13, 15, tzinfo=UTC)),
        ("202603020815-0030", datetime(2026, 3, 2, 8, 45, tzinfo=UTC)),
        ("20260302081500^S", datetime(2026, 3, 2, 8, 15, tzinfo=UTC)),
    ],
)
def test_hl7_timestamp(text: str, expected: datetime) -> None:
    assert hl7_time(text) == expected


@pytest.mark.parametrize(
    "text", ["", "2026", "202603", "2026-03-02", "20260230", "2026030225", "20260302+01", "20260302081500+2500", "abc"]
)
def test_hl7_timestamp_refuses_malformed(text: str) -> None:
    assert hl7_time(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-02", datetime(2026, 3, 2, tzinfo=UTC)),
        ("2026-03-02T08:15", datetime(2026, 3, 2, 8, 15, tzinfo=UTC)),
        ("2026-03-02T08:15:00", datetime(2026, 3, 2, 8, 15, tzinfo=UTC)),
        ("2026-03-02T08:15:00Z", datetime(2026, 3, 2, 8, 15, tzinfo=UTC)),
        ("2026-03-02T09:15:00+01:00", datetime(2026, 3, 2, 8, 15, tzinfo=UTC)),
        ("2026-03", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026", datetime(2026, 1, 1, tzinfo=UTC)),
    ],
)
def test_iso_time_is_utc_and_date_only_is_midnight(text: str, expected: datetime) -> None:
    found = iso_time(text)
    assert found == expected
    assert found is not None and found.utcoffset() is not None


@pytest.mark.parametrize("text", ["", "2026-13-01", "2026-02-30", "yesterday", "03/02/2026", "0001-01-01T00:00+01:00"])
def test_iso_time_refuses_malformed(text: str) -> None:
    assert iso_time(text) is None
