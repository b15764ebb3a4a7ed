"""Derived ANC (SAFETY_RULES §2 "ANC derivation", §6) and BASE / abnormal baseline (§1, §2 LAB-LFT-3/4,
LAB-CREAT-2, §6 "Abnormal baseline")."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from .factories import T0, Harness, brief, hl7, hours, lab, rules, temp


def test_anc_derived_from_wbc_and_neutrophil_percent() -> None:
    # §2: ANC = WBC x (%neutrophils + %bands) / 100 = 2.0 x 40 / 100 = 0.8 -> LAB-ANC-3, marked derived.
    [signal] = Harness().send(hl7("M1", [("WBC", "2.0"), ("NEUTLE", "40")]))
    assert signal.rule_id == "LAB-ANC-3"
    assert signal.detail["value"] == 0.8
    assert signal.detail["derived"] is True
    assert signal.evidence == ["HL7:LAB:M1:1", "HL7:LAB:M1:2"]


def test_band_percent_is_added_when_present() -> None:
    # 2.0 x (40 + 10) / 100 = 1.0 -> LAB-ANC-2.
    assert rules(Harness().send(hl7("M1", [("WBC", "2.0"), ("NEUTLE", "40"), ("NEUTBLE", "10")]))) == ["LAB-ANC-2"]


def test_parts_of_one_specimen_in_separate_records() -> None:
    harness = Harness()
    assert harness.send(lab("WBC", "2.0")) == []
    assert rules(harness.send(lab("NEUTLE", "40"))) == ["LAB-ANC-3"]


def test_band_percent_arriving_later_regrades_the_derived_anc() -> None:
    harness = Harness()
    harness.send(lab("WBC", "2.0"), lab("NEUTLE", "40"))
    assert brief(harness.send(lab("NEUTBLE", "10"))) == [("LAB-ANC-3", "RETRACTED"), ("LAB-ANC-2", "RAISED")]


def test_no_derivation_when_the_specimen_has_a_measured_anc() -> None:
    # §6: "ANC is derived only when the specimen carries no measured ANC".
    assert Harness().send(hl7("M1", [("NEUT", "3.0"), ("WBC", "2.0"), ("NEUTLE", "40")])) == []


def test_a_measured_anc_arriving_later_replaces_the_derived_one() -> None:
    harness = Harness()
    harness.send(lab("WBC", "2.0"), lab("NEUTLE", "40"))
    out = harness.send(lab("NEUT", "0.3"))
    assert sorted(brief(out)) == [("LAB-ANC-3", "RETRACTED"), ("LAB-ANC-4", "RAISED")]


def test_an_anc_the_source_already_derived_counts_as_the_specimens_anc() -> None:
    # The engine derives only when the specimen carries no ANC (§6); one sent marked derived is one.
    out = Harness().send(lab("NEUT", "0.8", derived=True), lab("WBC", "2.0"), lab("NEUTLE", "20"))
    assert rules(out) == ["LAB-ANC-3"]
    assert out[0].detail["derived"] is True


def test_no_derivation_without_neutrophil_percent_or_across_specimens() -> None:
    assert Harness().send(hl7("M1", [("WBC", "2.0"), ("NEUTBLE", "10")])) == []
    harness = Harness()
    harness.send(lab("WBC", "2.0", specimen="A"))
    assert harness.send(lab("NEUTLE", "40", specimen="B")) == []


def test_deleting_a_part_retracts_the_derived_signal() -> None:
    harness = Harness()
    harness.send(lab("WBC", "2.0"), lab("NEUTLE", "40"))
    out = harness.send(lab("NEUTLE", None, recid="LB-D1", status="deleted"))
    assert brief(out) == [("LAB-ANC-3", "RETRACTED")]


def test_derived_anc_feeds_febrile_neutropenia() -> None:
    out = Harness().send(hl7("M1", [("WBC", "2.0"), ("NEUTLE", "40")]), temp("39.0", at=T0 + hours(2)))
    assert rules(out) == ["LAB-ANC-3", "LAB-FN"]


BEFORE_DOSE = datetime(2026, 2, 20, 8, 0, tzinfo=UTC)


def baseline_case(baseline: list[tuple[str, str, datetime]], test: str, value: str, dosed: bool = True) -> list[str]:
    harness = Harness()
    for base_value, base_uln, at in baseline:
        harness.send(lab(test, base_value, uln=base_uln, at=at))
    if dosed:
        harness.dosed()
    return rules(harness.send(lab(test, value, uln=40 if test != "CREAT" else 80, at=T0)))


BASELINE_CASES: list[Any] = [
    # §2 LAB-LFT-3 "> 5 x BASE with abnormal baseline": BASE 60 > ULN 40; 250 = 4.17 x BASE.
    pytest.param([("60", "40", BEFORE_DOSE)], "ALT", "250", True, [], id="§2 LFT-3: abnormal BASE, 4.17 x BASE"),
    pytest.param([("60", "40", BEFORE_DOSE)], "ALT", "300", True, [], id="§2 LFT-3: 300 = 5 x BASE is not above"),
    pytest.param([("60", "40", BEFORE_DOSE)], "ALT", "300.1", True, ["LAB-LFT-3"], id="§2 LFT-3: 300.1 > 5 x BASE"),
    pytest.param(
        [("60", "40", BEFORE_DOSE)], "AST", "1200", True, ["LAB-LFT-3"], id="§2 LFT-4: 1200 = 20 x BASE is grade 3"
    ),
    pytest.param([("60", "40", BEFORE_DOSE)], "AST", "1200.1", True, ["LAB-LFT-4"], id="§2 LFT-4: 1200.1 > 20 x BASE"),
    pytest.param(
        [("30", "40", BEFORE_DOSE)], "ALT", "250", True, ["LAB-LFT-3"], id="§2 LFT-3: normal BASE, 6.25 x ULN"
    ),
    pytest.param(
        [("60", "40", BEFORE_DOSE)], "ALT", "250", False, ["LAB-LFT-3"], id="§6 no first dose, no BASE: x ULN"
    ),
    pytest.param(
        [("60", "40", datetime(2026, 3, 1, 6, 0, tzinfo=UTC))],
        "ALT",
        "250",
        True,
        ["LAB-LFT-3"],
        id="§6 a result on the dose date is not BASE",
    ),
    pytest.param(
        [("60", "40", BEFORE_DOSE), ("30", "40", datetime(2026, 2, 27, tzinfo=UTC))],
        "ALT",
        "250",
        True,
        ["LAB-LFT-3"],
        id="§1 BASE is the last value before the first dose",
    ),
    # §2 LAB-CREAT-2 "> 1.5 x BASE": BASE 40, ULN 80: 61 > 60 although below 1.5 x ULN = 120.
    pytest.param([("40", "80", BEFORE_DOSE)], "CREAT", "61", True, ["LAB-CREAT-2"], id="§2 CREAT-2: > 1.5 x BASE"),
    pytest.param([("40", "80", BEFORE_DOSE)], "CREAT", "60", True, [], id="§2 CREAT-2: 60 = 1.5 x BASE"),
]


@pytest.mark.parametrize(("baseline", "test", "value", "dosed", "expected"), BASELINE_CASES)
def test_baseline_table(
    baseline: list[tuple[str, str, datetime]], test: str, value: str, dosed: bool, expected: list[str]
) -> None:
    assert baseline_case(baseline, test, value, dosed) == expected


def test_abnormal_baseline_is_reported_with_the_signal() -> None:
    harness = Harness()
    harness.send(lab("ALT", "60", uln=40, at=BEFORE_DOSE, recid="LB-BASE"))
    harness.dosed()
    [signal] = harness.send(lab("ALT", "301", uln=40))
    detail = signal.detail
    assert (detail["base"], detail["base_uln"], detail["uln"], detail["baseline_abnormal"]) == (60, 40, 40, True)
    assert (detail["scale"], detail["version"], detail["grade"]) == ("CTCAE", "5.0", 3)
    assert "REC:ANAKINRA-AD:LB:LB-BASE" in signal.evidence


def test_an_invalid_last_value_is_not_base() -> None:
    harness = Harness()
    harness.send(lab("ALT", "60", uln=40, at=BEFORE_DOSE))
    harness.send(lab("ALT", None, uln=40, at=datetime(2026, 2, 27, tzinfo=UTC), data_issue="non-numeric"))
    harness.dosed()
    assert harness.send(lab("ALT", "250", uln=40)) == []
