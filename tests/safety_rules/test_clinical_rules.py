"""Participant-level clinical rules: AE-SI, AE-INF-2, AE-ANA, AE-ISR-3, AE-SAE, ADH-EVAL
(SAFETY_RULES §3, §6 "Adverse events")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from .factories import DOSE_DAY, Harness, ae, dose, isr, rules

INFECTIONS = "Infections and infestations"
HOSP = {"AESHOSP": True}

AE_CASES: list[Any] = [
    # §3 AE-SI "infection AE that is serious or CTCAE grade >= 3"; SOC per §6 "System organ class".
    pytest.param({"soc": INFECTIONS, "grade": 3}, ["AE-SI"], id="§3 AE-SI: AESOC infection, grade 3"),
    pytest.param({"meddra": "10040872", "grade": 3}, ["AE-SI"], id="§6 SOC from the MedDRA code (Skin infection)"),
    pytest.param({"decod": "lung INFECTION", "grade": 3}, ["AE-SI"], id="§6 SOC from AEDECOD ignoring case"),
    pytest.param({"term": "Sepsis", "grade": 4}, ["AE-SI"], id="§6 SOC from the verbatim term"),
    pytest.param({"soc_code": "10021881", "grade": 3}, ["AE-SI"], id="§6 AESOCCD 10021881"),
    pytest.param(
        {"soc": "Skin and subcutaneous tissue disorders", "decod": "Lung infection", "grade": 3},
        [],
        id="§6 AESOC wins over the coded term",
    ),
    pytest.param(
        {"soc": INFECTIONS, "grade": 2, "criteria": HOSP},
        ["AE-SI", "AE-SAE", "SPONSOR-24H"],
        id="§3 AE-SI: serious grade-2 infection",
    ),
    # §3 AE-INF-2 "infection AE of grade 2, not serious".
    pytest.param({"soc": INFECTIONS, "grade": 2}, ["AE-INF-2"], id="§3 AE-INF-2: grade 2, not serious"),
    pytest.param({"soc": INFECTIONS, "grade": 1}, [], id="§3 AE-INF-2: grade 1 fires nothing"),
    pytest.param({"soc": INFECTIONS}, [], id="§3: no grade, not serious"),
    pytest.param({"decod": "Headache", "grade": 3}, [], id="§3 AE-SI: not an infection"),
    # §3 AE-ANA "anaphylaxis (any grade) or allergic reaction grade >= 3".
    pytest.param({"meddra": "10002218"}, ["AE-ANA"], id="§3 AE-ANA: anaphylaxis, grade not sent"),
    pytest.param({"decod": "ANAPHYLAXIS", "grade": 1}, ["AE-ANA"], id="§3 AE-ANA: anaphylaxis by coded term"),
    pytest.param({"meddra": "10001718", "grade": 2}, [], id="§3 AE-ANA: allergic reaction grade 2"),
    pytest.param({"meddra": "10001718", "grade": 3}, ["AE-ANA"], id="§3 AE-ANA: allergic reaction grade 3"),
    # §3 AE-ISR-3 "injection-site reaction grade >= 3".
    pytest.param({"meddra": "10022095", "grade": 3}, ["AE-ISR-3"], id="§3 AE-ISR-3: ISR AE grade 3"),
    pytest.param({"decod": "Injection site reaction", "grade": 2}, [], id="§3 AE-ISR-3: ISR AE grade 2"),
    # §3 AE-SAE "AESER = Y, or any of AESDTH, AESLIFE, AESHOSP, AESDISAB, AESCONG, AESMIE = Y".
    pytest.param({"decod": "Headache", "criteria": {"AESER": True}}, ["AE-SAE", "SPONSOR-24H"], id="§3 AESER"),
    pytest.param({"decod": "Headache", "criteria": {"AESMIE": True}}, ["AE-SAE", "SPONSOR-24H"], id="§3 AESMIE"),
    pytest.param({"decod": "Headache", "criteria": {"AESER": False}}, [], id="§3 AE-SAE: AESER = N"),
    pytest.param({"decod": "Headache", "outcome": "FATAL"}, ["AE-SAE", "SPONSOR-24H", "H-DEATH"], id="§6 AEOUT FATAL"),
    pytest.param({"decod": "Headache", "grade": 5}, ["AE-SAE", "SPONSOR-24H", "H-DEATH"], id="§6 grade 5 is death"),
]


@pytest.mark.parametrize(("fields", "expected"), AE_CASES)
def test_adverse_event_table(fields: dict[str, Any], expected: list[str]) -> None:
    # INTERFACES §4: the signals of one record come in any order.
    fields = {"term": "verbatim text", **fields}
    assert sorted(rules(Harness().send(ae("AE-1", **fields)))) == sorted(expected)


def test_severities_and_actions_of_clinical_rules() -> None:
    # SAFETY_RULES §3 table.
    harness = Harness()
    signals = harness.send(
        ae("AE-1", "x", soc=INFECTIONS, grade=3),
        ae("AE-2", "x", soc=INFECTIONS, grade=2),
        ae("AE-3", "x", meddra="10002218"),
        isr("ISR-1", ["ULCER"]),
        ae("AE-4", "x", criteria=HOSP),
    )
    table = {(s.rule_id, s.severity, s.action) for s in signals}
    assert table >= {
        ("AE-SI", "URGENT", "DISCONTINUE_TREATMENT"),
        ("AE-INF-2", "NOTIFY", "NONE"),
        ("AE-ANA", "URGENT", "DISCONTINUE_TREATMENT"),
        ("AE-ISR-3", "URGENT", "DISCONTINUE_TREATMENT"),
        ("AE-SAE", "URGENT", "NONE"),
    }


ISR_CASES: list[Any] = [
    # §3 "ulceration or necrosis -> 3; pain, oedema/swelling/induration, or lipodystrophy -> 2; ... -> 1".
    pytest.param(["ULCER"], None, ["AE-ISR-3"], id="§3 ISR: ulceration is grade 3"),
    pytest.param(["NECR", "ERYTH"], None, ["AE-ISR-3"], id="§3 ISR: necrosis is grade 3"),
    pytest.param(["PAIN", "EDEMA", "LIPO"], None, [], id="§3 ISR: pain, oedema, lipodystrophy are grade 2"),
    pytest.param(["TEND", "ERYTH", "WARM", "ITCH"], None, [], id="§3 ISR: grade-1 findings"),
    pytest.param(["ERYTH"], 3, ["AE-ISR-3"], id="§3 ISR: ISRTOXGR 3 overrides the findings"),
    pytest.param(["ULCER"], 2, [], id="§3 ISR: ISRTOXGR 2 overrides ulceration"),
]


@pytest.mark.parametrize(("findings", "grade", "expected"), ISR_CASES)
def test_injection_site_table(findings: list[str], grade: int | None, expected: list[str]) -> None:
    assert rules(Harness().send(isr("ISR-1", findings, grade=grade))) == expected


@pytest.mark.parametrize(
    ("causality", "related"),
    [
        ("POSSIBLY RELATED", True),
        ("probably related", True),
        ("DEFINITELY RELATED", True),
        ("possible", True),
        ("Certain", True),
        ("UNLIKELY RELATED", False),
        ("NOT RELATED", False),
        (None, False),
    ],
)
def test_related_causality(causality: str | None, related: bool) -> None:
    # §3 "Related = causality in {definitely, probably, possibly related} (WHO-UMC certain, probable, possible)";
    # §6 "missing causality counts as not related".
    [sae, _clock, *_] = Harness().send(ae("AE-1", "x", decod="Headache", criteria=HOSP, causality=causality))
    assert sae.detail["related"] is related


def missed(day: int, *, recid: str | None = None) -> list[Any]:
    return dose(DOSE_DAY + timedelta(days=day), given=False, recid=recid)


def test_adherence_fires_when_the_19th_distinct_missed_date_arrives() -> None:
    # §3 ADH-EVAL "missed doses reach 19"; §6 "distinct dates with EXOCCUR = N and fires once".
    harness = Harness()
    harness.dosed()
    assert harness.send(*(missed(day) for day in range(1, 19))) == []
    assert harness.send(missed(5, recid="EX-again")) == []
    [signal] = harness.send(missed(19))
    assert (signal.rule_id, signal.severity, signal.action) == ("ADH-EVAL", "NOTIFY", "NONE")
    assert signal.detail["missed_doses"] == 19
    assert len(signal.evidence) == 19
    assert harness.send(missed(20)) == []
