"""The scenario files and the trial they describe, offline (no stack): validation on load, determinism, the
protocol's conduct, and `trialwatch replay` of the planned messages giving the outcomes SAFETY_RULES.md demands."""

from __future__ import annotations

import io
from collections import Counter
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from services.ingest.domain import Parsed, ParserConfig, parse_hl7_message
from services.safety_rules.domain import select_study
from tests.simulator.expectations import REJECTED, check_charter_outcomes
from trialwatch.replay import replay
from trialwatch.simulate.episodes import build
from trialwatch.simulate.runner import write_plan
from trialwatch.simulate.scenario import DEFAULT_SCENARIO, SCENARIOS, ScenarioError, auto_start, load_scenario

START = date(2030, 1, 7)
SCENARIO_FILES = sorted(path for path in SCENARIOS.glob("*.yaml") if not path.name.endswith(".base.yaml"))


def replayed(paths: list[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    stdout, stderr = io.BytesIO(), io.BytesIO()
    with ExitStack() as stack:
        inputs = [(path.name, stack.enter_context(path.open("rb"))) for path in paths]
        replay(inputs, select_study(None, {}), stdout, stderr)
    return [orjson.loads(line) for line in stdout.getvalue().splitlines()], [
        orjson.loads(line) for line in stderr.getvalue().splitlines()
    ]


def scenario_signals(name: str, tmp_path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return replayed(write_plan(load_scenario(SCENARIOS / name, start=START), tmp_path / "sent"))


@pytest.mark.parametrize("path", SCENARIO_FILES, ids=lambda path: path.stem)
def test_every_scenario_file_validates(path: Path) -> None:
    scenario = load_scenario(path, start=START)
    assert scenario.name == path.stem and scenario.study_id == "ANAKINRA-AD"


def test_the_scenarios_cover_the_issue(tmp_path: Path) -> None:
    names = {path.stem for path in SCENARIO_FILES}
    assert {
        "default",
        "quiet",
        "neutropenia",
        "serious-infections",
        "susar",
        "retraction",
        "duplicates",
        "malformed",
    } <= names


def test_an_unknown_key_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        f"include: {SCENARIOS / 'anakinra-pilot.base.yaml'}\nscenario: bad\ndescription: x\nseed: 1\n"
        "episodes: [{kind: neutropenia, subject: AD-003, visit: week 2, anc: 0.8, colour: red}]\n"
    )
    with pytest.raises(ScenarioError, match="episodes/0"):
        load_scenario(path)


def test_auto_start_is_the_first_of_the_month_after_next() -> None:
    assert auto_start(date(2026, 11, 26)) == date(2027, 1, 1)
    assert auto_start(date(2026, 3, 31)) == date(2026, 5, 1)


def test_the_same_seed_gives_the_same_bytes_and_another_seed_does_not() -> None:
    first = build(load_scenario(DEFAULT_SCENARIO, start=START))
    assert first == build(load_scenario(DEFAULT_SCENARIO, start=START))
    quiet = build(load_scenario(SCENARIOS / "quiet.yaml", start=START))
    assert [item.payload for item in quiet] != [item.payload for item in first]


def test_the_protocol_conduct_of_the_default_trial() -> None:
    """8 participants enrolled 12 days apart, 10 lab visits each plus AD-003's repeat and recovery, 90 diary
    days except after a discontinuation, AD-003's held doses recorded as missed; ~330 days in all."""
    plan = build(load_scenario(DEFAULT_SCENARIO, start=START))
    enrolled = [item for item in plan if item.what == "enrolled"]
    assert [(item.subject_id, item.study_day) for item in enrolled] == [
        (f"AD-{n:03d}", 12 * (n - 1)) for n in range(1, 9)
    ]
    labs = Counter(item.subject_id for item in plan if item.what.startswith("labs ") and "re-sent" not in item.what)
    assert labs == {**{f"AD-{n:03d}": 10 for n in range(1, 9)}, "AD-003": 12}
    diary = Counter(item.subject_id for item in plan if item.what in ("dose", "dose missed"))
    assert diary["AD-001"] == 90 and diary["AD-006"] == 31 and diary["AD-002"] == 39 and diary["AD-005"] == 53
    held = [item for item in plan if item.subject_id == "AD-003" and item.what == "dose missed"]
    assert {item.study_day - 84 for item in held} >= set(range(15, 22))  # week 2 is day 14 after the first dose
    assert 300 <= plan[-1].study_day <= 340
    assert b"^^^ANAKINRA-AD^SUBJ" in next(item.payload for item in plan if item.fmt == "hl7v2")


def test_replaying_the_default_plan_gives_the_charter_outcomes(tmp_path: Path) -> None:
    signals, rejected = scenario_signals("default.yaml", tmp_path)
    check_charter_outcomes(signals)
    assert len(rejected) == REJECTED and "PID-3" in rejected[0]["error"]


def test_the_quiet_trial_raises_nothing(tmp_path: Path) -> None:
    signals, rejected = scenario_signals("quiet.yaml", tmp_path)
    assert signals == [] and rejected == []


def test_re_sent_lab_messages_fire_nothing_new(tmp_path: Path) -> None:
    signals, _ = scenario_signals("duplicates.yaml", tmp_path)
    assert sorted(s["rule_id"] for s in signals) == ["LAB-ANC-2", "LAB-ANC-3"]  # as without the re-send


def test_the_susar_scenario_starts_both_ind_clocks(tmp_path: Path) -> None:
    """§5: SJS is life-threatening (IND-7D); the seizure is serious, possibly related, unexpected (IND-15D);
    §4: two participants with a related SAE reach H-RSAE."""
    signals, _ = scenario_signals("susar.yaml", tmp_path)
    clocks = sorted((s["rule_id"], s["subject_id"]) for s in signals if s["rule_id"].startswith("IND-"))
    assert clocks == [("IND-15D", "AD-004"), ("IND-7D", "AD-006")]
    assert [s["rule_id"] for s in signals if s["rule_id"].startswith("H-")] == ["H-RSAE"]


def test_the_malformed_messages_are_rejected_with_their_reasons(tmp_path: Path) -> None:
    _, rejected = scenario_signals("malformed.yaml", tmp_path)
    errors = sorted(item["error"] for item in rejected)
    assert len(errors) == 2 and "MSH-10" in errors[0] + errors[1] and "PID-3" in errors[0] + errors[1]


def test_the_lab_sends_birth_dates_that_make_each_child_10_to_17_and_ingest_keeps_only_ages() -> None:
    """The protocol enrols children aged 10-18 (the seed; `ages: [10, 18]` in the base scenario); the lab sends
    PID-7 and the parsed results carry the age at collection in years, never the date (INTERFACES §1.1)."""
    scenario = load_scenario(DEFAULT_SCENARIO, start=START)
    config = ParserConfig(frozenset({scenario.study_id}), scenario.study_id)
    ages: dict[str, set[int]] = {}
    for item in build(scenario):
        if item.fmt != "hl7v2" or not item.subject_id:
            continue
        result = parse_hl7_message(item.payload.decode(), config, origin="sim")
        if not isinstance(result, Parsed):
            continue  # the scenario's malformed messages (test_the_malformed_messages_are_rejected_...)
        for event in result.events:
            assert event.age_unit == "YEARS" and event.age_at_collection is not None
            assert event.subject_id is not None
            ages.setdefault(event.subject_id, set()).add(event.age_at_collection)
    assert len(ages) == 8
    for subject, seen in ages.items():
        # 10 to 17 at enrolment; the last lab visit is 60 + 179 days later: one birthday at most
        assert 10 <= min(seen) <= 17 and max(seen) - min(seen) <= 1, (subject, seen)
