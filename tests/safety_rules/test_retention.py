"""Bounded result history (services/safety_rules/domain/retention.py): what the state forgets, and that every
rule which reads older results still decides as SAFETY_RULES says after the forgetting.

Each test builds 100 days of normal creatinine results (four a day) after the result under test, so that the
participant's history is pruned several times before the late record arrives.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from services.safety_rules.domain import Engine, InMemoryStateStore, ParticipantState, packaged_study
from services.safety_rules.domain.retention import DEFAULT_HORIZON, MIN_RESULTS, prune_results

from .factories import STUDY, SUBJECT, T0, Harness, brief, hours, lab, rules, temp

BEFORE_DOSE = datetime(2026, 2, 20, 8, 0, tzinfo=UTC)
HISTORY = 400  # results, 6 h apart


def with_history(harness: Harness, start: datetime = T0) -> None:
    """100 days of creatinine 60 umol/L (ULN 80, no BASE): below 1.5 x ULN, no rule fires (§2 LAB-CREAT-2)."""
    for index in range(HISTORY):
        out = harness.send(lab("CREAT", 60, uln=80, at=start + hours(12 + 6 * index), recid=f"LB-H{index}"))
        assert out == []


def state(harness: Harness) -> ParticipantState:
    found = harness.store.load_participant(STUDY, SUBJECT)
    assert found is not None
    return found


def test_history_is_bounded_and_old_normal_results_are_forgotten() -> None:
    harness = Harness()
    harness.dosed()
    with_history(harness)
    participant = state(harness)
    # a few recent results survive each pruning, which runs when the participant holds MIN_RESULTS
    assert len(participant.results) <= MIN_RESULTS < HISTORY
    assert min(value.at for value in participant.results.values()) > T0 + DEFAULT_HORIZON
    # the time index forgets with the results
    assert len(participant.series["CREAT"].keys) == len(participant.results)


def test_nothing_graded_against_base_is_forgotten_before_the_first_dose() -> None:
    # §1: BASE = the last valid value before the first dose; without a first dose, any creatinine may become
    # it (§2 LAB-CREAT-2 "> 1.5 x BASE"). Platelets are never graded against BASE (§2 LAB-PLT-3/4).
    harness = Harness()
    with_history(harness)
    for index in range(HISTORY):
        harness.send(lab("PLAT", 250, lln=150, uln=400, at=T0 + hours(12 + 6 * index), recid=f"LB-P{index}"))
    tests = [value.test for value in state(harness).results.values()]
    assert tests.count("CREAT") == HISTORY
    assert tests.count("PLAT") < HISTORY


def test_correcting_an_old_result_that_fired_retracts_its_signal() -> None:
    # §2 "Result status": a corrected result whose rule no longer holds is retracted; PLT 30 is LAB-PLT-3
    # (25 <= platelets < 50), the corrected 150 fires nothing.
    harness = Harness()
    harness.dosed()
    [raised] = harness.send(lab("PLAT", 30, lln=150, uln=400, recid="LB-1"))
    with_history(harness)
    out = harness.send(lab("PLAT", 150, lln=150, uln=400, recid="LB-1C", status="corrected"))
    assert brief(out) == [("LAB-PLT-3", "RETRACTED")]
    assert out[0].retracts == raised.signal_id


def test_deleting_an_old_result_that_fired_retracts_its_signal() -> None:
    # §6: D / entered-in-error retracts every signal that used the result.
    harness = Harness()
    harness.dosed()
    harness.send(lab("PLAT", 20, lln=150, uln=400, recid="LB-1"))
    with_history(harness)
    out = harness.send(lab("PLAT", None, recid="LB-1D", status="deleted"))
    assert brief(out) == [("LAB-PLT-4", "RETRACTED")]


def test_correcting_a_forgotten_normal_result_raises_what_it_now_qualifies_for() -> None:
    # §2: "a new signal fires if the corrected value qualifies" - PLT 40 is LAB-PLT-3; nothing to retract.
    harness = Harness()
    harness.dosed()
    harness.send(lab("PLAT", 250, lln=150, uln=400, recid="LB-1"))
    with_history(harness)
    assert f"{SUBJECT}:SPC-{SUBJECT}-{T0:%Y%m%d%H%M}:PLAT" not in state(harness).results  # forgotten
    out = harness.send(lab("PLAT", 40, lln=150, uln=400, recid="LB-1C", status="corrected"))
    assert brief(out) == [("LAB-PLT-3", "RAISED")]


def test_the_baseline_survives_pruning() -> None:
    # §2 LAB-LFT-3 with an abnormal baseline (BASE 100 > ULN 40): "> 5 x BASE", so 400 (10 x ULN but 4 x BASE)
    # fires nothing and 520 (5.2 x BASE) fires LAB-LFT-3, reported with its BASE.
    harness = Harness()
    harness.send(lab("ALT", 100, uln=40, at=BEFORE_DOSE, recid="LB-BASE"))
    harness.dosed()
    with_history(harness)
    late = T0 + hours(6 * HISTORY)
    assert harness.send(lab("ALT", 400, uln=40, at=late, recid="LB-ALT1")) == []
    [signal] = harness.send(lab("ALT", 520, uln=40, at=late + hours(1), recid="LB-ALT2"))
    assert signal.rule_id == "LAB-LFT-3"
    assert signal.detail["base"] == 100


def test_a_late_anc_finds_an_old_fever() -> None:
    # §2 LAB-FN: ANC < 1.0 and, within 24 h of the sample, a temperature > 38.3; the ANC arrives 100 days late.
    harness = Harness()
    harness.dosed()
    harness.send(temp("38.5", at=T0, recid="VS-1"))
    with_history(harness)
    assert rules(harness.send(lab("NEUT", "0.8", at=T0 + hours(2), recid="LB-ANC"))) == ["LAB-ANC-3", "LAB-FN"]


def test_a_late_bilirubin_finds_the_nearest_old_alp() -> None:
    # §2 LAB-HYS / §6: ALT >= 3 x ULN (150 vs ULN 40) and bilirubin > 2 x ULN (50 vs ULN 20) within 48 h; the
    # ALP nearest the bilirubin (100, ULN 120: normal) decides, not the abnormal one (300) 39 h away.
    harness = Harness()
    harness.dosed()
    harness.send(
        lab("ALT", 150, uln=40, at=T0, recid="LB-ALT"),
        lab("ALP", 100, uln=120, at=T0, recid="LB-ALP1"),
        lab("ALP", 300, uln=120, at=T0 + hours(40), recid="LB-ALP2"),
    )
    with_history(harness, start=T0 + hours(48))
    out = harness.send(lab("BILI", 50, uln=20, at=T0 + hours(1), recid="LB-BILI"))
    assert rules(out) == ["LAB-HYS"]
    assert out[0].detail["alp_x_uln"] == 0.833


def test_a_specimen_keeps_its_old_part_while_its_derived_anc_is_kept() -> None:
    # §2 "ANC derivation": ANC = WBC x %neutrophils / 100 from the same specimen. The percentage (40 %) was
    # collected long before the WBC; once the WBC is corrected from 7.5 to 2.0, the derived ANC is 0.8:
    # LAB-ANC-3 (0.5 <= ANC < 1.0).
    harness = Harness()
    harness.dosed()
    with_history(harness)
    late = T0 + hours(6 * HISTORY)
    assert (
        harness.send(
            lab("NEUTLE", 40, at=T0, specimen="SPC-1", recid="LB-N"),
            lab("WBC", "7.5", at=late, specimen="SPC-1", recid="LB-W"),
        )
        == []
    )
    prune_results(harness.engine.config, state(harness))
    assert f"{SUBJECT}:SPC-1:NEUTLE" in state(harness).results
    out = harness.send(lab("WBC", "2.0", at=late, specimen="SPC-1", recid="LB-W2", status="corrected"))
    assert rules(out) == ["LAB-ANC-3"]
    assert out[0].detail["derived"] is True


class JsonStore(InMemoryStateStore):
    """The live service's way: every participant state goes through its JSON between records."""

    def save_participant(self, study_id: str, state: ParticipantState) -> None:
        super().save_participant(study_id, ParticipantState.from_json(json.loads(json.dumps(state.to_json()))))


def test_state_kept_as_json_prunes_where_the_in_memory_state_does() -> None:
    # live (JSON in PostgreSQL) must equal replay (objects in memory): same signals, same results kept
    in_memory, as_json = Harness(), Harness()
    as_json.store = JsonStore()
    as_json.engine = Engine(packaged_study(), as_json.store)
    for harness in (in_memory, as_json):
        harness.dosed()
        harness.send(lab("PLAT", 30, lln=150, uln=400, recid="LB-1"))
        with_history(harness)
    assert state(as_json).prune_at == state(in_memory).prune_at > 0
    assert state(as_json).latest_at == state(in_memory).latest_at is not None
    assert state(as_json).results.keys() == state(in_memory).results.keys()
    correction = lab("PLAT", 150, lln=150, uln=400, recid="LB-1C", status="corrected")
    assert in_memory.send(correction) == as_json.send(correction) != []
