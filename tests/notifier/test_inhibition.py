"""Grouping and inhibition: a HALT with PAUSE_STUDY pauses its study until a DSMB RESUME; while paused,
participant-level NOTIFY alerts fold into the pause; resumes apply by time, not by arrival order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from notifier.routing_docs import shipped_routing
from services.notifier.domain.inhibition import PauseEvent, active_pauses, inhibitor
from services.notifier.domain.model import SignalFacts
from services.notifier.domain.routing import decide
from shared.events.signal import Action, Severity

CONFIG = shipped_routing()
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
HALT = SignalFacts("ANAKINRA-AD", None, "H-NEUT", "HALT", "PAUSE_STUDY", "RAISED")


def pause(rule_id: str = "H-NEUT", at: datetime = T0, source: str = "sig-halt") -> PauseEvent:
    facts = SignalFacts("ANAKINRA-AD", None, rule_id, "HALT", "PAUSE_STUDY", "RAISED")
    return PauseEvent("pause", "ANAKINRA-AD", rule_id, at, source, f"alert-{source}", facts)


def resume(rule_id: str | None, at: datetime, source: str = "dsmb-1") -> PauseEvent:
    return PauseEvent("resume", "ANAKINRA-AD", rule_id, at, source)


def facts(rule_id: str, severity: Severity, subject: str | None = "AD-005", action: Action = "NONE") -> SignalFacts:
    return SignalFacts("ANAKINRA-AD", subject, rule_id, severity, action, "RAISED")


def test_a_pause_lasts_until_a_resume_of_its_rule() -> None:
    assert active_pauses([pause()]) == [pause()]
    assert active_pauses([pause(), resume("H-NEUT", T0 + timedelta(days=3))]) == []


def test_a_resume_of_another_rule_leaves_the_pause() -> None:
    assert active_pauses([pause(), resume("H-SI", T0 + timedelta(days=3))]) == [pause()]


def test_a_resume_without_a_rule_lifts_every_pause() -> None:
    pauses = [pause(), pause("H-SI", T0 + timedelta(hours=1), "sig-si")]
    assert active_pauses([*pauses, resume(None, T0 + timedelta(days=2))]) == []


def test_a_resume_recorded_before_the_halting_event_does_not_lift_a_later_pause() -> None:
    later = pause(at=T0 + timedelta(days=10), source="sig-later")
    assert active_pauses([resume("H-NEUT", T0), later]) == [later]


def test_a_resume_read_before_its_halt_still_lifts_it() -> None:
    events = [resume("H-NEUT", T0 + timedelta(days=3)), pause()]
    assert active_pauses(events) == []


def test_participant_notify_folds_into_the_pause() -> None:
    decision = decide(CONFIG, facts("LAB-ANC-2", "NOTIFY", action="REPEAT_LAB"), [pause()])
    assert decision.mode == "inhibited"
    assert decision.inhibited_by == pause()
    assert decision.ack_window is None
    assert any("paused by H-NEUT" in reason for reason in decision.reasons)


def test_urgent_alerts_still_go_out_during_a_pause() -> None:
    assert decide(CONFIG, facts("LAB-ANC-3", "URGENT", action="HOLD_DOSE"), [pause()]).mode == "immediate"


def test_study_level_notify_is_not_folded() -> None:
    assert inhibitor(CONFIG, facts("X-STUDY", "NOTIFY", subject=None), [pause()]) is None


def test_another_studys_pause_does_not_fold() -> None:
    other = SignalFacts("OTHER-STUDY", "AD-005", "LAB-ANC-2", "NOTIFY", "REPEAT_LAB", "RAISED")
    assert inhibitor(CONFIG, other, [pause()]) is None


def test_without_a_pause_notify_is_grouped_into_a_digest() -> None:
    assert decide(CONFIG, facts("LAB-ANC-2", "NOTIFY", action="REPEAT_LAB"), []).mode == "digest"


def test_info_during_a_pause_is_still_only_stored() -> None:
    assert decide(CONFIG, facts("LAB-ANC-1", "INFO"), [pause()]).mode == "store"


def test_only_a_halt_with_pause_study_opens_a_pause() -> None:
    assert decide(CONFIG, HALT, []).opens_pause
    assert not decide(CONFIG, facts("LAB-ANC-4", "URGENT", action="DISCONTINUE_TREATMENT"), []).opens_pause
