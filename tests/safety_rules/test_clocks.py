"""Regulatory clocks (SAFETY_RULES §5; §6 observed_at "for a clock, Day 0")."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from .factories import T0, Harness, ae, brief, hours, reg, rules

RECEIVED = T0 + hours(30)
SERIOUS = {"AESHOSP": True}
RELATED = "PROBABLY RELATED"
SECOND = timedelta(seconds=1)


def sae(ae_id: str = "AE-1", *, version: int = 1, **fields: Any) -> list[Any]:
    base: dict[str, Any] = {"criteria": SERIOUS, "recorded_at": RECEIVED}
    return ae(ae_id, "verbatim", version=version, **{**base, **fields})


def test_any_sae_starts_the_24_hour_clock_at_day_0() -> None:
    # §5 SPONSOR-24H "any SAE", due_at = Day 0 + 24 h, URGENT / NONE; Day 0 = ingestion time.
    signals = Harness().send(sae(decod="Headache"))
    [clock] = [s for s in signals if s.rule_id == "SPONSOR-24H"]
    assert (clock.severity, clock.action) == ("URGENT", "NONE")
    assert clock.observed_at == RECEIVED
    assert clock.due_at == RECEIVED + hours(24)
    assert clock.to_public()["due_at"] == "2026-03-12T14:00:00Z"  # Day 0 = 03-11 14:00Z


CLOCK_CASES: list[Any] = [
    # §5 SUSAR = serious AND related AND unexpected; Anaphylaxis 10002218 is not expected.
    pytest.param({"meddra": "10002218", "causality": RELATED}, "IND-15D", 15, id="§5 SUSAR: anaphylaxis"),
    pytest.param(
        {"meddra": "10002218", "causality": RELATED, "criteria": {"AESLIFE": True}},
        "IND-7D",
        7,
        id="§5 IND-7D: life-threatening SUSAR",
    ),
    pytest.param(
        {"decod": "Stevens-Johnson syndrome", "causality": RELATED, "outcome": "FATAL"},
        "IND-7D",
        7,
        id="§5 IND-7D: fatal SUSAR",
    ),
    pytest.param({"decod": "Seizure", "causality": RELATED}, "IND-15D", 15, id="§5 IND-15D: other SUSAR"),
    pytest.param({"decod": "Lung infection", "causality": RELATED}, None, 0, id="§5 infections expected by SOC"),
    pytest.param({"meddra": "10001718", "causality": RELATED}, None, 0, id="§5 Allergic reaction 10001718 expected"),
    pytest.param({"decod": "HEADACHE", "causality": RELATED}, None, 0, id="§5 expected by term ignoring case"),
    pytest.param({"decod": "Seizure", "causality": "UNLIKELY RELATED"}, None, 0, id="§5 not related: no SUSAR"),
]


@pytest.mark.parametrize(("fields", "clock", "days"), CLOCK_CASES)
def test_ind_clock_table(fields: dict[str, Any], clock: str | None, days: int) -> None:
    signals = Harness().send(sae(**fields))
    ind = [s for s in signals if s.rule_id in ("IND-7D", "IND-15D")]
    assert [s.rule_id for s in ind] == ([clock] if clock else [])
    if clock:
        assert ind[0].due_at == RECEIVED + timedelta(days=days)
        assert ind[0].observed_at == RECEIVED


def test_a_clock_breaches_once_after_its_due_time() -> None:
    # §5 "A clock that passes its due_at without one raises a single URGENT CLOCK-BREACH".
    harness = Harness()
    [_, clock] = harness.send(sae(decod="Headache"))
    assert harness.engine.advance_clock(RECEIVED + hours(24)) == []
    [breach] = harness.engine.advance_clock(RECEIVED + hours(24) + SECOND)
    assert (breach.rule_id, breach.severity, breach.action, breach.subject_id) == (
        "CLOCK-BREACH",
        "URGENT",
        "NONE",
        "AD-001",
    )
    assert breach.due_at == clock.due_at
    assert breach.detail["clock"] == "SPONSOR-24H"
    assert harness.engine.advance_clock(RECEIVED + hours(48)) == []


def test_a_submission_stops_its_clock() -> None:
    # §5 "A submission stops a clock: a REG record" (REGAEREF = the AE's id).
    harness = Harness()
    harness.send(sae(meddra="10002218", causality=RELATED))
    harness.send(reg("REG-1", "SPONSOR-24H", "AE-1", at=RECEIVED + hours(3)))
    assert harness.engine.advance_clock(RECEIVED + hours(25)) == []
    [breach] = harness.engine.advance_clock(RECEIVED + timedelta(days=15) + SECOND)
    assert breach.detail["clock"] == "IND-15D"


def test_a_submission_received_before_the_ae_prevents_the_breach() -> None:
    harness = Harness()
    harness.send(reg("REG-1", "SPONSOR-24H", "AE-1", at=RECEIVED))
    assert "SPONSOR-24H" in rules(harness.send(sae(decod="Headache")))
    assert harness.engine.advance_clock(RECEIVED + hours(48)) == []


def test_an_ae_no_longer_serious_retracts_and_stops_its_clock() -> None:
    harness = Harness()
    harness.send(sae(decod="Headache"))
    out = harness.send(ae("AE-1", "verbatim", decod="Headache", version=2, recorded_at=RECEIVED + hours(2)))
    assert sorted(brief(out)) == [("AE-SAE", "RETRACTED"), ("SPONSOR-24H", "RETRACTED")]
    assert harness.engine.advance_clock(RECEIVED + hours(48)) == []


def test_a_susar_update_to_fatal_moves_to_the_7_day_clock_from_the_update() -> None:
    # §5 Day 0 = when TrialWatch first ingested the qualifying information.
    harness = Harness()
    harness.send(sae(decod="Seizure", causality=RELATED))
    update = RECEIVED + hours(5)
    out = harness.send(sae(decod="Seizure", causality=RELATED, outcome="FATAL", version=2, recorded_at=update))
    moved = [s for s in out if s.rule_id.startswith("IND")]
    assert brief(moved) == [("IND-15D", "RETRACTED"), ("IND-7D", "RAISED")]
    assert moved[1].due_at == update + timedelta(days=7)
