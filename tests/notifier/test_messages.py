"""What a notification says, and the REG record a submission publishes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notifier.signal_factory import T0, anc3, sponsor_clock
from services.notifier.dispatch import message_id
from services.notifier.domain.clocks import NotAClockError, describe_offset, reg_record, reminder_times
from services.notifier.domain.messages import AlertView, render

CLOCKS = ("SPONSOR-24H", "IND-7D", "IND-15D")


def test_an_alert_message_names_rule_participant_evidence_action_due_time_and_link() -> None:
    signal = anc3().to_public()
    view = AlertView("alert-1", signal, T0 + timedelta(hours=1), "http://127.0.0.1:8083/v1/ack/TOKEN")
    message = render("alert", [view], recipient="pi@site.test", role="investigator")
    assert message.subject == "[TrialWatch] URGENT LAB-ANC-3 ANAKINRA-AD AD-003"
    for expected in (
        "LAB-ANC-3",
        "AD-003",
        signal["evidence"][0],
        "HOLD_DOSE - hold dosing",
        "Acknowledge by:  2026-03-02T09:15:00Z",
        "http://127.0.0.1:8083/v1/ack/TOKEN",
        "value: 0.8",
    ):
        assert expected in message.text
    assert message.body["alerts"][0]["ack_url"].endswith("/TOKEN")


def test_a_digest_lists_every_alert_under_one_subject() -> None:
    views = [AlertView(f"a{i}", anc3(f"AD-00{i}").to_public(), None, None) for i in range(3)]
    message = render("digest", views, recipient="so@site.test", role="safety_officer")
    assert message.subject == "[TrialWatch DIGEST] 3 NOTIFY alert(s) for ANAKINRA-AD"
    assert all(f"AD-00{i}" in message.text for i in range(3))


def test_a_clock_message_shows_when_the_report_is_due() -> None:
    clock = sponsor_clock().to_public()
    message = render(
        "reminder", [AlertView("a", clock, None, None)], recipient="x@y", role="sponsor_pv", note="2h left"
    )
    assert "Report due:      2026-03-03T08:15:00Z" in message.text and message.text.startswith("2h left")


def test_message_ids_are_deterministic_per_delivery() -> None:
    first = message_id("signal:s1", "pi@site.test", "email", "trialwatch.local")
    assert first == message_id("signal:s1", "pi@site.test", "email", "trialwatch.local")
    assert first != message_id("signal:s1", "so@site.test", "email", "trialwatch.local")
    assert first.startswith("<") and first.endswith("@trialwatch.local>")


def test_reminders_fall_before_due_and_only_in_the_future() -> None:
    due = T0 + timedelta(hours=24)
    offsets = [timedelta(hours=12), timedelta(hours=2)]
    assert reminder_times(due, offsets, T0) == [(offsets[0], T0 + timedelta(hours=12)), (offsets[1], due - offsets[1])]
    assert reminder_times(due, offsets, T0 + timedelta(hours=13)) == [(offsets[1], due - offsets[1])]
    assert describe_offset(timedelta(hours=12)) == "12h" and describe_offset(timedelta(seconds=90)) == "90s"


def test_the_reg_record_names_the_clock_and_the_ae_from_the_signal() -> None:
    submitted = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)
    record = reg_record(sponsor_clock("AE-004-1").to_public(), CLOCKS, submitted)
    assert record.model_dump() == {
        "DOMAIN": "REG",
        "STUDYID": "ANAKINRA-AD",
        "USUBJID": "AD-004",
        "RECID": record.RECID,
        "REGCLOCK": "SPONSOR-24H",
        "REGAEREF": "AE-004-1",
        "REGDTC": "2026-03-02T20:00:00Z",
    }
    assert record.RECID == reg_record(sponsor_clock("AE-004-1").to_public(), CLOCKS, T0).RECID


def test_the_ae_reference_falls_back_to_the_ae_evidence() -> None:
    signal = sponsor_clock("AE-009-2").to_public() | {"detail": {}}
    assert reg_record(signal, CLOCKS, T0).REGAEREF == "AE-009-2"


def test_a_breach_records_the_submission_of_its_clock() -> None:
    breach = sponsor_clock().to_public() | {"rule_id": "CLOCK-BREACH", "detail": {"clock": "IND-7D", "ae_id": "AE-1"}}
    assert reg_record(breach, CLOCKS, T0).REGCLOCK == "IND-7D"


def test_a_lab_signal_is_no_clock() -> None:
    with pytest.raises(NotAClockError):
        reg_record(anc3().to_public(), CLOCKS, T0)
