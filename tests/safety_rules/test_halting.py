"""Study-level halting rules (SAFETY_RULES §1 latch and RESUME, §4, §6 "Study-level (HALT) signals")
and the beta-binomial statistic of DOMAIN §7."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.safety_rules.domain import parse_study
from services.safety_rules.domain.beta_binomial import boundary, posterior_exceeds, regularized_incomplete_beta

from .factories import DOSE_DAY, T0, Harness, ae, brief, dose, dsmb, lab, rules, study_doc

RUN_IN = datetime(2026, 2, 20, 8, 0, tzinfo=UTC)
INFECTIONS = "Infections and infestations"


def anc3(subject: str, *, at: datetime = T0, recid: str | None = None) -> list[object]:
    return lab("NEUT", "0.8", subject=subject, at=at, recid=recid)  # type: ignore[return-value]


def serious_infection(subject: str, ae_id: str) -> list[object]:
    return ae(ae_id, "pneumonia", subject=subject, soc=INFECTIONS, grade=3)  # type: ignore[return-value]


def halts(signals: list[object]) -> list[str]:
    return [s.rule_id for s in signals if s.subject_id is None]  # type: ignore[attr-defined]


def test_h_neut_fires_at_the_second_participant_then_latches() -> None:
    # §4 H-NEUT "2nd participant with a grade >= 3 ANC"; §1 "stay latched (silent) until a DSMB RESUME".
    harness = Harness()
    for subject in ("A", "B", "C", "D"):
        harness.dosed(subject)
    assert halts(harness.send(anc3("A"))) == []
    out = harness.send(anc3("B"))
    assert rules(out) == ["LAB-ANC-3", "H-NEUT"]
    [halt] = [s for s in out if s.rule_id == "H-NEUT"]
    assert (halt.subject_id, halt.severity, halt.action) == (None, "HALT", "PAUSE_STUDY")
    assert (halt.detail["count"], halt.detail["boundary"]) == (2, 2)
    assert len(halt.evidence) == 2
    assert halts(harness.send(anc3("C"))) == []
    assert harness.send(dsmb("DSMB-1", "RESUME", "H-NEUT")) == []
    assert halts(harness.send(anc3("D"))) == ["H-NEUT"]


def test_resume_for_all_rules_unlatches_every_rule() -> None:
    harness = Harness()
    for subject in ("A", "B", "C"):
        harness.dosed(subject)
    harness.send(anc3("A"), anc3("B"))
    harness.send(dsmb("DSMB-1", "RESUME"))
    assert halts(harness.send(anc3("C"))) == ["H-NEUT"]


def test_other_dsmb_decisions_keep_the_latch() -> None:
    harness = Harness()
    for subject in ("A", "B", "C"):
        harness.dosed(subject)
    harness.send(anc3("A"), anc3("B"), dsmb("DSMB-1", "CONTINUE_PAUSE"), dsmb("DSMB-2", "RESUME", "H-SI"))
    assert halts(harness.send(anc3("C"))) == []


def test_a_counted_participant_counts_once() -> None:
    # §4 "Count distinct participants, each once"; §6 "a counted participant's later events never fire them".
    harness = Harness()
    harness.dosed("A")
    harness.send(anc3("A"))
    assert halts(harness.send(lab("NEUT", "0.3", subject="A", at=T0.replace(day=12)))) == []


def test_run_in_events_fire_participant_rules_but_do_not_count() -> None:
    # §1 Phases: participant-level rules fire in run-in; §4 counts events on or after the first dose.
    harness = Harness()
    harness.dosed("A")
    harness.dosed("B")
    assert rules(harness.send(anc3("A", at=RUN_IN))) == ["LAB-ANC-3"]
    assert halts(harness.send(anc3("B"))) == []


def test_an_event_on_the_first_dose_date_counts() -> None:
    # §6 "On or after first dose includes the dose date" (the ANC at 06:00, the dose at 08:00).
    harness = Harness()
    harness.dosed("A")
    harness.dosed("B")
    harness.send(anc3("A", at=datetime(2026, 3, 1, 6, 0, tzinfo=UTC)))
    assert halts(harness.send(anc3("B"))) == ["H-NEUT"]


def test_a_participant_whose_qualifying_signal_is_retracted_stops_counting() -> None:
    # §6 "a participant whose qualifying signal is retracted no longer counts".
    harness = Harness()
    harness.dosed("A")
    harness.dosed("B")
    harness.send(anc3("A"))
    harness.send(lab("NEUT", "2.5", subject="A", recid="LB-C", status="corrected"))
    assert halts(harness.send(anc3("B"))) == []


def test_qualifying_events_received_before_the_first_dose_record_count_when_it_arrives() -> None:
    # §4 counts events "on or after their first dose" whatever the order the records arrive in: the
    # AE-SI of P1 (onset after the dose date) counts once P1's EX record says the dose was given.
    harness = Harness()
    harness.send(serious_infection("P0", "AE-1"), serious_infection("P1", "AE-2"))
    assert halts(harness.send(dose(subject="P0"))) == []
    out = harness.send(dose(subject="P1"))
    [halt] = [s for s in out if s.rule_id == "H-SI"]
    assert (halt.detail["count"], halt.detail["n"], halt.detail["boundary"]) == (2, 2, 2)
    assert halt.observed_at == DOSE_DAY


def test_halt_signals_are_never_retracted() -> None:
    harness = Harness()
    harness.dosed("A")
    harness.dosed("B")
    harness.send(anc3("A"), anc3("B"))
    out = harness.send(lab("NEUT", "2.5", subject="A", recid="LB-C", status="corrected"))
    assert brief(out) == [("LAB-ANC-3", "RETRACTED")]


def test_h_death_in_run_in_fires() -> None:
    # §4 H-DEATH "any death, in any phase" (no first dose at all).
    out = Harness().send(ae("AE-1", "x", decod="Headache", criteria={"AESDTH": True}))
    assert halts(out) == ["H-DEATH"]


def test_h_ana_at_the_first_participant_on_treatment() -> None:
    # §4 H-ANA "1st participant with AE-ANA".
    harness = Harness()
    harness.dosed("A")
    assert halts(harness.send(ae("AE-1", "x", subject="A", meddra="10002218"))) == ["H-ANA"]


def test_h_rsae_counts_related_saes_including_an_update_to_related() -> None:
    # §4 H-RSAE "2nd participant with a related SAE"; §1 "Updates" are re-evaluated.
    harness = Harness()
    harness.dosed("A")
    harness.dosed("B")
    related = {"decod": "Headache", "criteria": {"AESHOSP": True}, "causality": "POSSIBLY RELATED"}
    assert halts(harness.send(ae("AE-1", "x", subject="A", **related))) == []
    unrelated = {**related, "causality": "NOT RELATED"}
    assert halts(harness.send(ae("AE-2", "x", subject="B", **unrelated))) == []
    assert halts(harness.send(ae("AE-2", "x", subject="B", version=2, **related))) == ["H-RSAE"]


def test_h_si_detail_with_two_of_eight() -> None:
    # §4 H-SI "2nd participant with AE-SI"; posterior 0.922 for 2 of 8, boundary 2 (DOMAIN §7.3).
    harness = Harness()
    for index in range(8):
        harness.dosed(f"P{index}")
    assert halts(harness.send(serious_infection("P0", "AE-1"))) == []
    out = harness.send(serious_infection("P1", "AE-2"))
    [halt] = [s for s in out if s.rule_id == "H-SI"]
    detail = halt.to_public()["detail"]
    assert (detail["count"], detail["n"], detail["boundary"]) == (2, 8, 2)
    assert round(detail["posterior"], 3) == 0.922


def test_h_si_detail_with_one_of_eight_when_the_threshold_allows_it() -> None:
    # A study whose threshold (0.60) puts b_8 at 1 publishes 0.657 for 1 of 8 (DOMAIN §7.3 table).
    doc = study_doc()
    doc["halting"]["H-SI"]["boundary"]["bayesian"]["threshold"] = 0.60
    harness = Harness(parse_study(doc))
    for index in range(8):
        harness.dosed(f"P{index}")
    [halt] = [s for s in harness.send(serious_infection("P0", "AE-1")) if s.rule_id == "H-SI"]
    assert (halt.detail["count"], halt.detail["n"], halt.detail["boundary"]) == (1, 8, 1)
    assert round(halt.detail["posterior"], 3) == 0.657


@pytest.mark.parametrize(("x", "n", "expected"), [(1, 8, 0.657), (2, 8, 0.922), (0, 8, 0.121), (1, 1, 0.864)])
def test_posterior_matches_domain_7_3(x: int, n: int, expected: float) -> None:
    # DOMAIN §7.3 "Posterior P(p > 0.05 | x events in n), prior Beta(0.25, 4.75)".
    assert round(posterior_exceeds(x, n, 0.25, 4.75, 0.05), 3) == expected


def test_boundary_is_two_at_every_n_up_to_eight() -> None:
    # SAFETY_RULES §4 "b_n (= 2 at every n <= 8 for threshold 0.90)"; DOMAIN §7.3 "2 2 2 2 2 3 3 3" at 0.95.
    assert [boundary(n, 0.25, 4.75, 0.05, 0.90) for n in range(1, 9)] == [2] * 8
    assert [boundary(n, 0.25, 4.75, 0.05, 0.95) for n in range(1, 9)] == [2, 2, 2, 2, 2, 3, 3, 3]


def test_regularized_incomplete_beta_against_closed_forms() -> None:
    # I_x(1, 1) = x; I_x(2, 3) = sum_{j=2..4} C(4, j) x^j (1 - x)^(4 - j); I_0.5(a, a) = 0.5.
    assert regularized_incomplete_beta(1, 1, 0.3) == pytest.approx(0.3)
    assert regularized_incomplete_beta(2, 3, 0.4) == pytest.approx(0.5248)
    assert regularized_incomplete_beta(0.5, 0.5, 0.5) == pytest.approx(0.5)


def test_counted_participants_keep_their_order_through_a_key_sorting_json_store() -> None:
    """PostgreSQL JSONB sorts object keys; the counting order must survive it (halting evidence and ids)."""
    import json

    from services.safety_rules.domain.study_state import StudyState

    state = StudyState("ANAKINRA-AD")
    state.counted["H-SI"] = {"AD-009": ("REC:a",), "AD-002": ("REC:b",), "AD-005": ("REC:c",)}
    state.counted["H-ANA"] = {"AD-007": ("REC:d",)}
    stored = json.loads(json.dumps(state.to_json(), sort_keys=True))
    restored = StudyState.from_json(stored)
    assert list(restored.counted) == ["H-SI", "H-ANA"]
    assert list(restored.counted["H-SI"]) == ["AD-009", "AD-002", "AD-005"]
    assert restored.counted["H-SI"]["AD-002"] == ("REC:b",)
