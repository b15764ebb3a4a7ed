"""Unit normalisation (INTERFACES §1.1, DOMAIN §9.3): every accepted spelling, value and limits, by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest
from ingest_builders import obx, oru, parsed

from services.ingest.domain import ParserConfig
from services.ingest.domain.hl7_message import parse_hl7_message
from shared.events import LabResultRecorded, VitalSignRecorded

# (LOINC, value, unit as sent, OBX-7 range, canonical value, canonical unit, canonical low, canonical high)
CONVERSIONS = [
    # counts: 10^9/L family, factor 1
    ("751-8", "1.2", "10*9/L", "1.5-8.0", "1.2", "10*9/L", "1.5", "8.0"),
    ("751-8", "1.2", "10^9/L", "1.5-8.0", "1.2", "10*9/L", "1.5", "8.0"),
    ("751-8", "1.2", "10*3/uL", "1.5-8.0", "1.2", "10*9/L", "1.5", "8.0"),
    ("751-8", "1.2", "10^3/uL", "1.5-8.0", "1.2", "10*9/L", "1.5", "8.0"),
    ("751-8", "1.2", "K/uL", "1.5-8.0", "1.2", "10*9/L", "1.5", "8.0"),
    ("751-8", "1.2", "x10E3/uL", "1.5-8.0", "1.2", "10*9/L", "1.5", "8.0"),
    # counts per microlitre: divide by 1000
    ("751-8", "1200", "/uL", "1500-8000", "1.2", "10*9/L", "1.5", "8"),
    ("751-8", "1200", "cells/uL", "1500-8000", "1.2", "10*9/L", "1.5", "8"),
    ("777-3", "45000", "/mm3", "150000-450000", "45", "10*9/L", "150", "450"),
    ("777-3", "45000", "cells/mm3", "150000-450000", "45", "10*9/L", "150", "450"),
    ("6690-2", "3.1", "K/uL", ">4.0", "3.1", "10*9/L", "4.0", None),
    ("731-0", "0.9", "10*3/uL", "<4.8", "0.9", "10*9/L", None, "4.8"),
    # haemoglobin: g/L canonical
    ("718-7", "7.9", "g/dL", "11.5-15.5", "79.0", "g/L", "115.0", "155.0"),
    ("718-7", "79", "g/L", "115-155", "79", "g/L", "115", "155"),
    ("718-7", "6.206", "mmol/L", "6.206-12.412", "100", "g/L", "100", "200"),
    # bilirubin and creatinine: umol/L canonical
    ("1975-2", "2.0", "mg/dL", "0.1-1.2", "34.20", "umol/L", "1.71", "20.52"),
    ("1975-2", "34", "umol/L", "2-21", "34", "umol/L", "2", "21"),
    ("2160-0", "1.5", "mg/dL", "0.3-1.0", "132.60", "umol/L", "26.52", "88.40"),
    ("14682-9", "133", "umol/L", "27-88", "133", "umol/L", "27", "88"),
    # enzymes
    ("1742-6", "210", "U/L", "5-40", "210", "U/L", "5", "40"),
    ("1920-8", "210", "IU/L", "5-40", "210", "U/L", "5", "40"),
    ("6768-6", "95", "U/L", "<300", "95", "U/L", None, "300"),
    # percentages
    ("770-8", "62", "%", "40-75", "62", "%", "40", "75"),
    ("764-1", "4", "%", "0-5", "4", "%", "0", "5"),
]


@pytest.mark.parametrize("case", CONVERSIONS, ids=[f"{c[0]}-{c[2]}" for c in CONVERSIONS])
def test_lab_unit_spelling_converts_value_and_range(config: ParserConfig, case: tuple[str, ...]) -> None:
    loinc, value, unit, ref, expected, canonical, low, high = case
    result = parsed(parse_hl7_message(oru(obx("1", loinc, value, unit, ref)), config, origin="t:1"))
    (event,) = result.events
    assert isinstance(event, LabResultRecorded)
    assert event.value == Decimal(expected)
    assert event.unit == canonical
    assert event.ref_low == (None if low is None else Decimal(low))
    assert event.ref_high == (None if high is None else Decimal(high))
    assert (event.original_value, event.original_unit, event.data_issue) == (value, unit, None)


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        ("38.4", "Cel", "38.4"),
        ("38.4", "C", "38.4"),
        ("38.4", "degC", "38.4"),
        ("101.3", "[degF]", "38.5"),
        ("101.3", "F", "38.5"),
        ("98.6", "F", "37.0"),
    ],
)
def test_temperature_spelling_converts_to_celsius(config: ParserConfig, value: str, unit: str, expected: str) -> None:
    result = parsed(parse_hl7_message(oru(obx("1", "8310-5", value, unit)), config, origin="t:1"))
    (event,) = result.events
    assert isinstance(event, VitalSignRecorded)
    assert (event.value, event.unit, event.data_issue) == (Decimal(expected), "Cel", None)


def test_unit_spelling_matches_ignoring_case(config: ParserConfig) -> None:
    result = parsed(parse_hl7_message(oru(obx("1", "1975-2", "1.0", "MG/DL")), config, origin="t:1"))
    assert result.events[0].model_dump()["value"] == Decimal("17.10")


@pytest.mark.parametrize(
    ("loinc", "unit", "issue"),
    [
        ("751-8", "mg/dL", "unit 'mg/dL' is not a known unit of NEUT"),
        ("718-7", "%", "unit '%' is not a known unit of HGB"),
        ("751-8", "", "unit missing for NEUT"),
    ],
)
def test_unknown_unit_is_a_data_issue_not_a_rejection(config: ParserConfig, loinc: str, unit: str, issue: str) -> None:
    result = parsed(parse_hl7_message(oru(obx("1", loinc, "1.2", unit, "1.5-8.0")), config, origin="t:1"))
    event = result.events[0].model_dump()
    assert (event["value"], event["unit"], event["ref_low"], event["ref_high"]) == (None, None, None, None)
    assert event["data_issue"] == issue
    assert (event["original_value"], event["original_unit"]) == ("1.2", unit or None)
