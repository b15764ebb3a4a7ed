"""Graded laboratory rules and LAB-DQ at, just below and just above every limit.

Expected signals written by hand from SAFETY_RULES.md; each case names the section and row.
"""

from __future__ import annotations

from typing import Any

import pytest

from .factories import Harness, lab, rules

CASES: list[Any] = [
    # §2 LAB-ANC-4 "ANC < 0.5"; §2 LAB-ANC-3 "0.5 <= ANC < 1.0"; §1 interval semantics.
    pytest.param("NEUT", "0.49", {"lln": 2.0}, ["LAB-ANC-4"], id="§2 LAB-ANC-4: 0.49 < 0.5"),
    pytest.param("NEUT", "0.5", {"lln": 2.0}, ["LAB-ANC-3"], id="§2 LAB-ANC-3: 0.5 at its lower limit"),
    pytest.param("NEUT", "0.51", {"lln": 2.0}, ["LAB-ANC-3"], id="§2 LAB-ANC-3: 0.51"),
    pytest.param("NEUT", "0.99", {"lln": 2.0}, ["LAB-ANC-3"], id="§2 LAB-ANC-3: 0.99 < 1.0"),
    # §2 LAB-ANC-2 "1.0 <= ANC < 1.5".
    pytest.param("NEUT", "1.0", {"lln": 2.0}, ["LAB-ANC-2"], id="§2 LAB-ANC-2: 1.0 at its lower limit"),
    pytest.param("NEUT", "1.01", {"lln": 2.0}, ["LAB-ANC-2"], id="§2 LAB-ANC-2: 1.01"),
    pytest.param("NEUT", "1.49", {"lln": 2.0}, ["LAB-ANC-2"], id="§2 LAB-ANC-2: 1.49 < 1.5"),
    # §2 LAB-ANC-1 "LLN > ANC >= 1.5"; §1 "1 if LLN known and v < LLN; else 0".
    pytest.param("NEUT", "1.5", {"lln": 2.0}, ["LAB-ANC-1"], id="§2 LAB-ANC-1: 1.5 at its lower limit"),
    pytest.param("NEUT", "1.51", {"lln": 2.0}, ["LAB-ANC-1"], id="§2 LAB-ANC-1: 1.51"),
    pytest.param("NEUT", "1.99", {"lln": 2.0}, ["LAB-ANC-1"], id="§2 LAB-ANC-1: 1.99 < LLN 2.0"),
    pytest.param("NEUT", "2.0", {"lln": 2.0}, [], id="§2 LAB-ANC-1: 2.0 = LLN is grade 0"),
    pytest.param("NEUT", "2.01", {"lln": 2.0}, [], id="§2 LAB-ANC-1: 2.01 above LLN"),
    pytest.param("NEUT", "1.7", {}, [], id="§1 ANC grade 1 needs the LLN: none without it"),
    pytest.param("NEUT", "0.4", {}, ["LAB-ANC-4"], id="§1 grades 2-4 are absolute: no LLN needed"),
    pytest.param("NEUT", "1.3", {"lln": 1.2}, ["LAB-ANC-2"], id="§1 ANC formula: 1.3 >= LLN 1.2 is still grade 2"),
    # §6 Values: "<x counts as certainly below x (ANC <0.5 is grade 4); >x never gives a low-count grade".
    pytest.param("NEUT", "0.5", {"comparator": "<"}, ["LAB-ANC-4"], id="§6 Values: <0.5 is grade 4"),
    pytest.param("NEUT", "1.0", {"comparator": "<"}, ["LAB-ANC-3"], id="§6 Values: <1.0 is certainly below 1.0"),
    pytest.param("NEUT", "0.3", {"comparator": ">"}, [], id="§6 Values: >0.3 gives no low-count grade"),
    # §2 LAB-PLT-4 "platelets < 25"; LAB-PLT-3 "25 <= platelets < 50".
    pytest.param("PLAT", "24.9", {"lln": 150}, ["LAB-PLT-4"], id="§2 LAB-PLT-4: 24.9 < 25"),
    pytest.param("PLAT", "25", {"lln": 150}, ["LAB-PLT-3"], id="§2 LAB-PLT-3: 25 at its lower limit"),
    pytest.param("PLAT", "25.1", {"lln": 150}, ["LAB-PLT-3"], id="§2 LAB-PLT-3: 25.1"),
    pytest.param("PLAT", "49.9", {"lln": 150}, ["LAB-PLT-3"], id="§2 LAB-PLT-3: 49.9 < 50"),
    pytest.param("PLAT", "50", {"lln": 150}, [], id="§2 LAB-PLT-3: 50 is not below 50"),
    pytest.param("PLAT", "50.1", {"lln": 150}, [], id="§2 LAB-PLT-3: 50.1"),
    pytest.param("PLAT", "25", {"lln": 150, "comparator": "<"}, ["LAB-PLT-4"], id="§6 Values: platelets <25"),
    # §2 LAB-HGB-3 "haemoglobin < 80 g/L".
    pytest.param("HGB", "79.9", {"lln": 115}, ["LAB-HGB-3"], id="§2 LAB-HGB-3: 79.9 < 80"),
    pytest.param("HGB", "80", {"lln": 115}, [], id="§2 LAB-HGB-3: 80 is not below 80"),
    pytest.param("HGB", "80.1", {"lln": 115}, [], id="§2 LAB-HGB-3: 80.1"),
    pytest.param("HGB", "40", {"lln": 115}, ["LAB-HGB-3"], id="§2 LAB-HGB-3: no higher haemoglobin rule"),
    # §2 LAB-LFT-3 "> 5 x ULN"; LAB-LFT-4 "> 20 x ULN" (no baseline: graded against ULN, §6).
    pytest.param("ALT", "199.9", {"uln": 40}, [], id="§2 LAB-LFT-3: ALT 199.9 <= 5 x 40"),
    pytest.param("ALT", "200", {"uln": 40}, [], id="§2 LAB-LFT-3: ALT 200 = 5 x ULN is not above"),
    pytest.param("ALT", "200.1", {"uln": 40}, ["LAB-LFT-3"], id="§2 LAB-LFT-3: ALT 200.1 > 5 x ULN"),
    pytest.param("ALT", "800", {"uln": 40}, ["LAB-LFT-3"], id="§2 LAB-LFT-4: ALT 800 = 20 x ULN is grade 3"),
    pytest.param("ALT", "800.1", {"uln": 40}, ["LAB-LFT-4"], id="§2 LAB-LFT-4: ALT 800.1 > 20 x ULN"),
    pytest.param("AST", "200", {"uln": 40}, [], id="§2 LAB-LFT-3: AST 200 = 5 x ULN"),
    pytest.param("AST", "200.1", {"uln": 40}, ["LAB-LFT-3"], id="§2 LAB-LFT-3: AST 200.1"),
    pytest.param("AST", "800.1", {"uln": 40}, ["LAB-LFT-4"], id="§2 LAB-LFT-4: AST 800.1"),
    pytest.param("ALT", "500", {}, [], id="§1 LFT without ULN is undetermined, and §6 not LAB-DQ"),
    # §2 LAB-CREAT-2 "creatinine > 1.5 x ULN"; §6 "fires for any creatinine above its limit".
    pytest.param("CREAT", "119.9", {"uln": 80}, [], id="§2 LAB-CREAT-2: 119.9 <= 1.5 x 80"),
    pytest.param("CREAT", "120", {"uln": 80}, [], id="§2 LAB-CREAT-2: 120 = 1.5 x ULN is not above"),
    pytest.param("CREAT", "120.1", {"uln": 80}, ["LAB-CREAT-2"], id="§2 LAB-CREAT-2: 120.1 > 1.5 x ULN"),
    pytest.param("CREAT", "500", {"uln": 80}, ["LAB-CREAT-2"], id="§6 LAB-CREAT-2: also above 6 x ULN"),
    pytest.param("CREAT", "500", {}, [], id="§1 creatinine without ULN is undetermined"),
    # §2 LAB-DQ "implausible magnitude (ANC or WBC > 100, platelets > 2000)".
    pytest.param("NEUT", "100", {"lln": 2.0}, [], id="§2 LAB-DQ: ANC 100 is plausible"),
    pytest.param("NEUT", "100.1", {"lln": 2.0}, ["LAB-DQ"], id="§2 LAB-DQ: ANC 100.1 > 100"),
    pytest.param("WBC", "100", {}, [], id="§2 LAB-DQ: WBC 100 is plausible"),
    pytest.param("WBC", "100.1", {}, ["LAB-DQ"], id="§2 LAB-DQ: WBC 100.1 > 100"),
    pytest.param("PLAT", "2000", {"lln": 150}, [], id="§2 LAB-DQ: platelets 2000 is plausible"),
    pytest.param("PLAT", "2000.1", {"lln": 150}, ["LAB-DQ"], id="§2 LAB-DQ: platelets 2000.1 > 2000"),
    pytest.param("PLAT", "2000", {"comparator": ">"}, ["LAB-DQ"], id="§2 LAB-DQ: platelets >2000"),
    # §2 LAB-DQ "unknown or unconvertible unit ... non-numeric value for a graded test"; §6 range is LAB-DQ.
    pytest.param("NEUT", None, {"data_issue": "non-numeric value 'clumped'"}, ["LAB-DQ"], id="§2 LAB-DQ: non-numeric"),
    pytest.param("NEUT", "0.4", {"unit": None}, ["LAB-DQ"], id="§2 LAB-DQ: unknown unit"),
    pytest.param("NEUT", "0.4", {"unit": "g/L"}, ["LAB-DQ"], id="§2 LAB-DQ: a unit that is not the test's"),
    pytest.param("HGB", "9", {"data_issue": "range value 8-10"}, ["LAB-DQ"], id="§6 Values: a range is LAB-DQ"),
    pytest.param("ALP", None, {"data_issue": "non-numeric"}, ["LAB-DQ"], id="§6 LAB-DQ covers ALP"),
    pytest.param("NEUTLE", None, {"data_issue": "non-numeric"}, ["LAB-DQ"], id="§6 LAB-DQ covers neutrophil %"),
    pytest.param("LYM", None, {"data_issue": "non-numeric"}, [], id="§6 LAB-DQ: lymphocytes feed no rule"),
    pytest.param("NEUT", None, {"status": "preliminary", "data_issue": "x"}, [], id="§6 preliminary fires nothing"),
]


@pytest.mark.parametrize(("test", "value", "options", "expected"), CASES)
def test_lab_rule_table(test: str, value: str | None, options: dict[str, Any], expected: list[str]) -> None:
    assert rules(Harness().send(lab(test, value, **options))) == expected


def test_temperature_that_cannot_be_used_is_a_data_query() -> None:
    # §6 LAB-DQ covers temperature.
    from .factories import temp

    assert rules(Harness().send(temp(None, data_issue="non-numeric value 'hot'"))) == ["LAB-DQ"]
    assert rules(Harness().send(temp("38.5"))) == []


def test_anc_signal_detail_carries_grade_value_unit_scale_and_version() -> None:
    # INTERFACES §3 example and SAFETY_RULES §1 "every stored grade carries scale and version".
    [signal] = Harness().send(lab("NEUT", "0.8", lln=1.8))
    assert (signal.rule_id, signal.severity, signal.action) == ("LAB-ANC-3", "URGENT", "HOLD_DOSE")
    detail = signal.to_public()["detail"]
    assert {k: detail[k] for k in ("grade", "value", "unit", "scale", "version")} == {
        "grade": 3,
        "value": 0.8,
        "unit": "10*9/L",
        "scale": "CTCAE",
        "version": "5.0",
    }


@pytest.mark.parametrize(
    ("rule_id", "record", "severity", "action"),
    [
        ("LAB-ANC-1", lab("NEUT", "1.6", lln=2.0), "INFO", "NONE"),
        ("LAB-ANC-2", lab("NEUT", "1.2"), "NOTIFY", "REPEAT_LAB"),
        ("LAB-ANC-4", lab("NEUT", "0.2"), "URGENT", "DISCONTINUE_TREATMENT"),
        ("LAB-PLT-3", lab("PLAT", "30"), "URGENT", "HOLD_DOSE"),
        ("LAB-PLT-4", lab("PLAT", "20"), "URGENT", "DISCONTINUE_TREATMENT"),
        ("LAB-HGB-3", lab("HGB", "70"), "URGENT", "NONE"),
        ("LAB-LFT-3", lab("ALT", "300", uln=40), "URGENT", "HOLD_DOSE"),
        ("LAB-LFT-4", lab("AST", "900", uln=40), "URGENT", "DISCONTINUE_TREATMENT"),
        ("LAB-CREAT-2", lab("CREAT", "130", uln=80), "NOTIFY", "NONE"),
        ("LAB-DQ", lab("WBC", "150"), "NOTIFY", "DATA_QUERY"),
    ],
)
def test_severity_and_action_per_rule(rule_id: str, record: Any, severity: str, action: str) -> None:
    # SAFETY_RULES §2 table, columns severity and action.
    [signal] = Harness().send(record)
    assert (signal.rule_id, signal.severity, signal.action) == (rule_id, severity, action)


def test_one_rule_per_result_per_family() -> None:
    # §1 "ANC 0.4 fires LAB-ANC-4, not also LAB-ANC-3 and -2".
    assert rules(Harness().send(lab("NEUT", "0.4", lln=2.0))) == ["LAB-ANC-4"]


def test_each_result_of_a_message_is_graded() -> None:
    # §1 "A rule fires once per qualifying source record": one signal per qualifying OBX of a message.
    from .factories import hl7

    signals = Harness().send(hl7("M1", [("NEUT", "0.8"), ("PLAT", "30"), ("HGB", "130")]))
    assert sorted(rules(signals)) == ["LAB-ANC-3", "LAB-PLT-3"]
    assert {s.evidence[0] for s in signals} == {"HL7:LAB:M1:1", "HL7:LAB:M1:2"}
