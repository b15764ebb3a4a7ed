"""LAB-FN and LAB-HYS (SAFETY_RULES §2 rows LAB-FN, LAB-HYS; §6 "Composite rules").

Windows "within 24 h" / "within 48 h" are taken as inclusive at exactly 24 h / 48 h.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from .factories import T0, Harness, hours, lab, rules, temp

MINUTE = timedelta(minutes=1)


def fn_case(anc: str, temps: list[tuple[str, timedelta]]) -> list[str]:
    harness = Harness()
    out = harness.send(lab("NEUT", anc, lln=2.0))
    for index, (value, offset) in enumerate(temps):
        out += harness.send(temp(value, at=T0 + offset, recid=f"VS-{index}"))
    return rules(out)


FN_CASES: list[Any] = [
    pytest.param("0.9", [("38.4", hours(2))], ["LAB-ANC-3", "LAB-FN"], id="§2 LAB-FN: single reading > 38.3"),
    pytest.param("0.9", [("38.3", hours(2))], ["LAB-ANC-3"], id="§2 LAB-FN: 38.3 is not above 38.3"),
    pytest.param("0.9", [("38.31", hours(2))], ["LAB-ANC-3", "LAB-FN"], id="§2 LAB-FN: 38.31 > 38.3"),
    pytest.param("0.99", [("39.0", hours(1))], ["LAB-ANC-3", "LAB-FN"], id="§2 LAB-FN: ANC 0.99 < 1.0"),
    pytest.param("1.0", [("39.0", hours(1))], ["LAB-ANC-2"], id="§2 LAB-FN: ANC 1.0 is not below 1.0"),
    pytest.param("0.4", [("39.0", hours(1))], ["LAB-ANC-4", "LAB-FN"], id="§1 composite fires beside ANC-4"),
    pytest.param("0.9", [("38.4", hours(24))], ["LAB-ANC-3", "LAB-FN"], id="§6 LAB-FN: 24 h after, inclusive"),
    pytest.param("0.9", [("38.4", hours(24) + MINUTE)], ["LAB-ANC-3"], id="§6 LAB-FN: just over 24 h after"),
    pytest.param("0.9", [("38.4", -hours(24))], ["LAB-ANC-3", "LAB-FN"], id="§6 LAB-FN: 24 h before the sample"),
    pytest.param(
        "0.9",
        [("38.0", hours(1)), ("38.0", hours(2) + MINUTE)],
        ["LAB-ANC-3", "LAB-FN"],
        id="§2 LAB-FN: >= 38.0 twice, 61 min apart",
    ),
    pytest.param(
        "0.9", [("38.0", hours(1)), ("38.0", hours(2))], ["LAB-ANC-3"], id="§2 LAB-FN: 60 min apart is not > 1 h"
    ),
    pytest.param("0.9", [("37.9", hours(1)), ("38.0", hours(3))], ["LAB-ANC-3"], id="§2 LAB-FN: 37.9 is below 38.0"),
    pytest.param(
        "0.9",
        [("38.0", -hours(24) - MINUTE), ("38.1", hours(1))],
        ["LAB-ANC-3"],
        id="§6 LAB-FN: both sustained readings must lie in the window",
    ),
    pytest.param("0.9", [("38.0", hours(1))], ["LAB-ANC-3"], id="§2 LAB-FN: one reading of 38.0 is not sustained"),
]


@pytest.mark.parametrize(("anc", "temps", "expected"), FN_CASES)
def test_febrile_neutropenia_table(anc: str, temps: list[tuple[str, timedelta]], expected: list[str]) -> None:
    assert fn_case(anc, temps) == expected


def test_fn_raised_by_the_temperature_arriving_last_is_observed_at_the_temperature() -> None:
    # §6 "raised by whichever of ANC or temperature arrives last"; observed_at = triggering record's time.
    harness = Harness()
    harness.send(lab("NEUT", "0.8"))
    [fn] = harness.send(temp("38.9", at=T0 + hours(3)))
    assert fn.rule_id == "LAB-FN"
    assert fn.observed_at == T0 + hours(3)
    assert fn.evidence == [
        f"REC:ANAKINRA-AD:LB:LB-AD-001-NEUT-{T0:%Y%m%d%H%M}",
        "REC:ANAKINRA-AD:VS:VS-AD-001-202603101100",
    ]


def test_fn_raised_by_the_anc_arriving_last() -> None:
    harness = Harness()
    assert harness.send(temp("38.9", at=T0 - hours(3))) == []
    assert rules(harness.send(lab("NEUT", "0.8"))) == ["LAB-ANC-3", "LAB-FN"]


def test_fn_fires_once_per_anc_sample() -> None:
    # §6 "LAB-FN fires once per ANC sample".
    harness = Harness()
    harness.send(lab("NEUT", "0.8"), temp("39.0", at=T0 + hours(1)))
    assert harness.send(temp("39.5", at=T0 + hours(2))) == []


def hys_case(records: list[list[Any]]) -> list[str]:
    return rules(Harness().send(*records))


HYS_CASES: list[Any] = [
    pytest.param(
        [lab("ALT", "120", uln=40), lab("BILI", "40.1", uln=20, at=T0 + hours(1))],
        ["LAB-HYS"],
        id="§6 LAB-HYS: ALT 3 x ULN inclusive, bilirubin > 2 x ULN",
    ),
    pytest.param(
        [lab("ALT", "119.9", uln=40), lab("BILI", "45", uln=20, at=T0 + hours(1))],
        [],
        id="§2 LAB-HYS: ALT just below 3 x ULN",
    ),
    pytest.param(
        [lab("ALT", "150", uln=40), lab("BILI", "40", uln=20, at=T0 + hours(1))],
        [],
        id="§2 LAB-HYS: bilirubin 2 x ULN is not above",
    ),
    pytest.param(
        [lab("AST", "120", uln=40), lab("BILI", "41", uln=20, at=T0 + hours(1))],
        ["LAB-HYS"],
        id="§2 LAB-HYS: AST qualifies like ALT",
    ),
    pytest.param(
        [lab("ALT", "150", uln=40), lab("ALP", "200", uln=100), lab("BILI", "45", uln=20, at=T0 + hours(1))],
        [],
        id="§2 LAB-HYS: ALP 2 x ULN known within 48 h excludes",
    ),
    pytest.param(
        [lab("ALT", "150", uln=40), lab("ALP", "199.9", uln=100), lab("BILI", "45", uln=20, at=T0 + hours(1))],
        ["LAB-HYS"],
        id="§2 LAB-HYS: ALP just below 2 x ULN",
    ),
    pytest.param(
        [lab("ALT", "150", uln=40), lab("BILI", "45", uln=20, at=T0 + hours(48))],
        ["LAB-HYS"],
        id="§2 LAB-HYS: samples 48 h apart, inclusive",
    ),
    pytest.param(
        [lab("ALT", "150", uln=40), lab("BILI", "45", uln=20, at=T0 + hours(48) + MINUTE)],
        [],
        id="§2 LAB-HYS: samples just over 48 h apart",
    ),
    pytest.param(
        [
            lab("ALT", "150", uln=40),
            lab("ALP", "500", uln=100, at=T0 - hours(49)),
            lab("BILI", "45", uln=20, at=T0 + hours(1)),
        ],
        ["LAB-HYS"],
        id="§6 LAB-HYS: an ALP outside 48 h is not known",
    ),
    pytest.param(
        [
            lab("ALT", "150", uln=40),
            lab("ALP", "150", uln=100, at=T0 + hours(2)),
            lab("ALP", "500", uln=100, at=T0 + hours(30)),
            lab("BILI", "45", uln=20, at=T0 + hours(1)),
        ],
        ["LAB-HYS"],
        id="§6 LAB-HYS: the ALP nearest the bilirubin decides",
    ),
    pytest.param(
        [lab("ALT", "250", uln=40), lab("BILI", "45", uln=20, at=T0 + hours(1))],
        ["LAB-LFT-3", "LAB-HYS"],
        id="§1 composite LAB-HYS fires beside the ALT grade rule",
    ),
    pytest.param(
        [lab("ALT", "150"), lab("BILI", "45", uln=20, at=T0 + hours(1))],
        [],
        id="§1 ALT without ULN cannot be 3 x ULN",
    ),
]


@pytest.mark.parametrize(("records", "expected"), HYS_CASES)
def test_hys_law_table(records: list[list[Any]], expected: list[str]) -> None:
    assert hys_case(records) == expected


def test_hys_fires_once_per_bilirubin_and_reports_ratios() -> None:
    harness = Harness()
    [hys] = harness.send(lab("ALT", "150", uln=40), lab("BILI", "45", uln=20, at=T0 + hours(1)))
    assert hys.detail["aminotransferase"] == "ALT"
    assert hys.detail["aminotransferase_x_uln"] == 3.75
    assert hys.detail["bilirubin_x_uln"] == 2.25
    assert harness.send(lab("AST", "200", uln=40, at=T0 + hours(2))) == []


def test_a_later_nearer_alp_at_2_x_uln_retracts_hys() -> None:
    # Decision (§1 "signals that no longer hold are retracted"): an ALP >= 2 x ULN arriving after the
    # signal, nearest to the bilirubin, means Hy's law no longer holds.
    harness = Harness()
    harness.send(lab("ALT", "150", uln=40), lab("BILI", "45", uln=20, at=T0 + hours(1)))
    [retraction] = harness.send(lab("ALP", "300", uln=100, at=T0 + hours(1)))
    assert (retraction.rule_id, retraction.status) == ("LAB-HYS", "RETRACTED")
