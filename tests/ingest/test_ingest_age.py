"""Age at collection from HL7 PID-7 (INTERFACES §1.1: "Keep the age at collection, not the date of birth").

Expected ages are counted by hand on a calendar: completed years from 2 years, completed months from one
month, days below (SDTM AGE/AGEU units).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import orjson
import pytest
from ingest_builders import obx, oru, parsed

from services.ingest.domain import ParserConfig, parse_hl7_message
from services.ingest.domain.age import age_at, birth_date


@pytest.mark.parametrize(
    ("born", "collected", "expected"),
    [
        (date(2011, 7, 4), date(2026, 7, 3), (14, "YEARS")),  # the day before the 15th birthday
        (date(2011, 7, 4), date(2026, 7, 4), (15, "YEARS")),  # the birthday itself
        (date(2024, 3, 1), date(2026, 2, 28), (23, "MONTHS")),  # a day short of 2 years: still in months
        (date(2024, 3, 1), date(2026, 3, 1), (2, "YEARS")),
        (date(2020, 2, 29), date(2023, 2, 28), (2, "YEARS")),  # a leap-day birth counts its year on 1 March
        (date(2026, 1, 31), date(2026, 2, 28), (28, "DAYS")),  # no 31 February: the month is not complete
        (date(2026, 1, 31), date(2026, 3, 1), (1, "MONTHS")),
        (date(2026, 3, 1), date(2026, 3, 1), (0, "DAYS")),
    ],
)
def test_age_is_counted_in_completed_units(born: date, collected: date, expected: tuple[int, str]) -> None:
    at = datetime(collected.year, collected.month, collected.day, 8, 0, tzinfo=UTC)
    assert age_at(born, at) == expected


def test_no_age_for_a_collection_before_the_birth() -> None:
    assert age_at(date(2026, 3, 2), datetime(2026, 3, 1, tzinfo=UTC)) is None


@pytest.mark.parametrize(
    ("pid7", "expected"),
    [
        ("20110704", date(2011, 7, 4)),
        ("201107041230+0200", date(2011, 7, 4)),  # the time of birth plays no part
        ("20110704^D", date(2011, 7, 4)),  # TS.2, the deprecated precision
        ("2011", None),  # partial dates give no honest age in days or months
        ("201107", None),
        ("20110231", None),
        ("", None),
        ("unknown", None),
    ],
)
def test_birth_date_reads_pid7(pid7: str, expected: date | None) -> None:
    assert birth_date(pid7) == expected


def _message(pid7: str, *observations: str, collected: str = "20260302080000") -> str:
    text = oru(*observations, collected=collected)
    return text.replace("||20110704|F|", f"||{pid7}|F|")


def test_every_result_carries_the_age_and_no_event_carries_the_birth_date(config: ParserConfig) -> None:
    message = _message("20220815", obx("1", "751-8", "0.8", "10*3/uL"), obx("2", "8310-5", "38.6", "Cel"))
    events = parsed(parse_hl7_message(message, config, origin="f:1")).events
    # 2022-08-15 → 2026-03-02: 3 completed years (the 4th birthday is in August)
    assert [(e.kind, e.age_at_collection, e.age_unit) for e in events] == [
        ("lab.result", 3, "YEARS"),
        ("vital.sign", 3, "YEARS"),
    ]
    for event in events:
        dumped = orjson.dumps(event.model_dump(mode="json")).decode()
        assert "2022-08-15" not in dumped and "20220815" not in dumped


def test_an_infant_is_aged_in_months_and_an_unreadable_birth_date_rejects_nothing(config: ParserConfig) -> None:
    infant = parsed(parse_hl7_message(_message("20250510", obx("1", "777-3", "40")), config, origin="f:1"))
    assert [(e.age_at_collection, e.age_unit) for e in infant.events] == [(9, "MONTHS")]  # 10 May → 2 March
    unknown = parsed(parse_hl7_message(_message("2025", obx("1", "777-3", "40")), config, origin="f:1"))
    assert [(e.age_at_collection, e.age_unit) for e in unknown.events] == [(None, None)]


def test_each_order_ages_its_results_at_its_own_collection_time(config: ParserConfig) -> None:
    """The age is worked out once per collection time: a later order of the same message, collected on the
    birthday, must not reuse the age of the earlier one (nor the earlier one's results the later age)."""
    first = _message("20220815", obx("1", "751-8", "0.8"), obx("2", "777-3", "40"), collected="20260814230000")
    second = "\r".join(
        ["OBR|2|PL-2|FO-2^LIS|57021-8^CBC^LN|||20260815080000", obx("3", "751-8", "0.9"), obx("4", "777-3", "41")]
    )
    third = "\r".join(["OBR|3|PL-3|FO-3^LIS|57021-8^CBC^LN|||20260814230000", obx("5", "751-8", "1.0")])
    events = parsed(parse_hl7_message(first + second + "\r" + third + "\r", config, origin="f:1")).events
    # born 2022-08-15: on 2026-08-14 3 completed years, on the 4th birthday (2026-08-15) 4
    assert [(e.source.rsplit(":", 1)[1], e.age_at_collection, e.age_unit) for e in events] == [
        ("1", 3, "YEARS"),
        ("2", 3, "YEARS"),
        ("3", 4, "YEARS"),
        ("4", 4, "YEARS"),
        ("5", 3, "YEARS"),
    ]
