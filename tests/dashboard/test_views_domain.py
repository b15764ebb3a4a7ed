"""Phase, evaluability, halting rows, pauses, grade bands and endpoint windows (pure domain; expected
values written by hand from DOMAIN §1, SAFETY_RULES §1, §4 and §6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard.plan_factory import anakinra_plan
from services.dashboard.domain.endpoint import EndpointParticipant, endpoint_summary, windows
from services.dashboard.domain.halting import EngineStudyState, halting_table, pause_status
from services.dashboard.domain.participants import ParticipantFacts, participant_view
from services.dashboard.domain.timeline import grade_bands

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def facts(given: int = 0, missed: int = 0, first_dose: datetime | None = T0, **other: datetime) -> ParticipantFacts:
    return ParticipantFacts("AD-001", other.get("enrolled", T0 - timedelta(days=60)), first_dose, given, missed,
                            other.get("withdrawn"), other.get("completed"), None)  # fmt: skip


def test_first_dose_date_is_study_day_1_and_day_90_is_still_treatment() -> None:
    plan = anakinra_plan()
    assert participant_view(facts(1), plan, T0).study_day == 1
    day_90 = participant_view(facts(90), plan, T0 + timedelta(days=89))
    assert (day_90.phase, day_90.study_day) == ("treatment", 90)
    assert participant_view(facts(90), plan, T0 + timedelta(days=90)).phase == "follow-up"


def test_without_a_dose_an_enrolled_participant_is_in_run_in() -> None:
    assert participant_view(facts(first_dose=None), anakinra_plan(), T0).phase == "run-in"


def test_withdrawal_overrides_the_schedule() -> None:
    view = participant_view(facts(10, withdrawn=T0 + timedelta(days=9)), anakinra_plan(), T0 + timedelta(days=20))
    assert view.phase == "withdrawn"


@pytest.mark.parametrize(
    ("given", "missed", "evaluable"), [(72, 18, True), (71, 18, None), (60, 19, False), (71, 0, None)]
)
def test_evaluable_at_72_doses_and_lost_at_19_missed(given: int, missed: int, evaluable: bool | None) -> None:
    # DOMAIN §1: evaluable iff >= 72 of 90 doses; non-evaluable as soon as 19 are missed (90 - 72 + 1)
    assert participant_view(facts(given, missed), anakinra_plan(), T0).evaluable is evaluable


def engine_state(si: list[str], dosed: int, latched: tuple[str, ...] = ()) -> EngineStudyState:
    data = {
        "dosed": [f"AD-{i:03d}" for i in range(1, dosed + 1)],
        "counted": [["H-SI", [[s, ["REC:x"]] for s in si]], ["H-NEUT", [["AD-004", ["HL7:y"]]]]],
        "latched": list(latched),
    }
    return EngineStudyState.from_json(data)


def test_h_si_with_one_of_eight_is_below_boundary_with_posterior_0_657() -> None:
    rows = {row.rule_id: row for row in halting_table(anakinra_plan(), engine_state(["AD-003"], 8))}
    si = rows["H-SI"]
    assert (si.count, si.n, si.boundary, si.reached) == (1, 8, 2, False)
    assert si.posterior == pytest.approx(0.657, abs=5e-4)  # SAFETY_RULES §4
    assert (rows["H-NEUT"].count, rows["H-NEUT"].boundary) == (1, 2)
    assert (rows["H-DEATH"].count, rows["H-DEATH"].boundary) == (0, 1)


def test_h_si_with_two_of_eight_reaches_the_boundary_with_posterior_0_922() -> None:
    si = next(
        r
        for r in halting_table(anakinra_plan(), engine_state(["AD-003", "AD-005"], 8, ("H-SI",)))
        if r.rule_id == "H-SI"
    )
    assert (si.count, si.boundary, si.reached, si.latched) == (2, 2, True, True)
    assert si.posterior == pytest.approx(0.922, abs=5e-4)


def test_a_pause_lasts_until_a_resume_of_its_rule_or_of_all_rules() -> None:
    pause = ("pause", T0, "H-SI")
    assert pause_status([pause]).paused
    assert pause_status([pause, ("resume", T0 + timedelta(hours=1), "H-NEUT")]).since == T0
    assert not pause_status([pause, ("resume", T0 + timedelta(hours=1), "H-SI")]).paused
    assert not pause_status([pause, ("resume", T0 + timedelta(hours=1), None)]).paused
    assert pause_status([pause, ("resume", T0 - timedelta(hours=1), None)]).paused  # an older resume lifts nothing


def test_anc_bands_follow_ctcae_v5_with_the_labs_lln_for_grade_1() -> None:
    neut = next(t for t in anakinra_plan().plotted if t.test == "NEUT")
    bands = {band.grade: (band.low, band.high) for band in grade_bands(neut.thresholds, lln=1.8, uln=8.0)}
    assert bands == {4: (0.0, 0.5), 3: (0.5, 1.0), 2: (1.0, 1.5), 1: (1.5, 1.8)}


def test_alt_bands_are_multiples_of_the_uln() -> None:
    alt = next(t for t in anakinra_plan().plotted if t.test == "ALT")
    bands = {band.grade: (band.low, band.high) for band in grade_bands(alt.thresholds, lln=None, uln=40.0)}
    assert (bands[1], bands[2], bands[3]) == ((40.0, 120.0), (120.0, 200.0), (200.0, 800.0))
    assert bands[4][0] == 800.0


def test_treatment_window_starts_at_the_first_dose_date_and_stops_at_the_cut() -> None:
    person = EndpointParticipant("AD-001", T0 - timedelta(days=60), T0, None, ())
    spans = windows(person, anakinra_plan(), T0 + timedelta(days=30))
    assert spans.run_in == (T0 - timedelta(days=60), T0.replace(hour=0))
    assert spans.treatment == (T0.replace(hour=0), T0 + timedelta(days=30))


def test_endpoint_counts_each_infection_in_the_period_of_its_onset() -> None:
    first = T0.replace(hour=0)
    onsets = (
        first - timedelta(days=3),
        first + timedelta(hours=2),
        first + timedelta(days=95),
    )  # run-in, day 1, follow-up
    person = EndpointParticipant("AD-001", first - timedelta(days=60), T0, None, onsets)
    summary = endpoint_summary([person], anakinra_plan(), first + timedelta(days=200))
    assert (summary.run_in.events, summary.treatment.events) == (1, 1)
    assert summary.run_in.person_years == pytest.approx(60 / 365.25)
    assert summary.treatment.person_years == pytest.approx(90 / 365.25)
    assert summary.test.treatment_share == pytest.approx(0.6)
    assert summary.test.p_value == pytest.approx(0.84)  # P(K >= 1 | Bin(2, 0.6)) = 1 - 0.4^2
