"""The terminology data file: the INTERFACES §1.1 codes are there, and bad data fails loudly."""

from __future__ import annotations

import copy
from importlib import resources
from typing import Any

import pytest
import yaml

from services.ingest.domain import build_terminology, packaged_terminology

LOINC = {
    "751-8": "NEUT",
    "753-4": "NEUT",
    "26499-4": "NEUT",
    "770-8": "NEUTLE",
    "26511-6": "NEUTLE",
    "764-1": "NEUTBLE",
    "26508-2": "NEUTBLE",
    "6690-2": "WBC",
    "26464-8": "WBC",
    "777-3": "PLAT",
    "26515-7": "PLAT",
    "718-7": "HGB",
    "731-0": "LYM",
    "26474-7": "LYM",
    "1742-6": "ALT",
    "1743-4": "ALT",
    "1920-8": "AST",
    "1975-2": "BILI",
    "6768-6": "ALP",
    "2160-0": "CREAT",
    "14682-9": "CREAT",
    "8310-5": "TEMP",
}


def _raw() -> dict[str, Any]:
    text = resources.files("services.ingest.domain").joinpath("data/terminology.yaml").read_text("utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def test_every_loinc_code_of_interfaces_maps_to_its_test() -> None:
    assert packaged_terminology().loinc_to_test == LOINC


def test_canonical_units() -> None:
    families = packaged_terminology().test_family
    canonical = {test: family.canonical for test, family in families.items()}
    assert canonical == {
        "NEUT": "10*9/L",
        "NEUTLE": "%",
        "NEUTBLE": "%",
        "WBC": "10*9/L",
        "PLAT": "10*9/L",
        "HGB": "g/L",
        "LYM": "10*9/L",
        "ALT": "U/L",
        "AST": "U/L",
        "BILI": "umol/L",
        "ALP": "U/L",
        "CREAT": "umol/L",
        "TEMP": "Cel",
    }
    assert packaged_terminology().vital_tests == {"TEMP"}


def test_status_codes_are_strings_not_yaml_booleans() -> None:
    assert set(packaged_terminology().hl7_status) == set("FUCPRISDWXNO")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("colour",), "red", "unknown top-level keys ['colour']"),
        (("result_status", "hl7", "F"), "done", "unknown statuses {'F': 'done'}"),
        (("units", "count", "canonical"), "10*12/L", "canonical unit is not among its spellings"),
        (("units", "haemoglobin", "spellings", "g/dL"), {"times": 10}, "unknown keys ['times']"),
        (("units", "haemoglobin", "spellings", "g/dL"), {"divide": 0}, "divides by zero"),
        (("units", "haemoglobin", "spellings", "g/dL"), 10.5, "expected a number written as int or string"),
    ],
)
def test_bad_terminology_fails_loudly(path: tuple[str, ...], value: object, message: str) -> None:
    raw = copy.deepcopy(_raw())
    target = raw
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build_terminology(raw)
