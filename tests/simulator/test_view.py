"""The terminal views: the routine diary stays out of the feed, alerts and the officer's actions are counted."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from rich.console import Console

from trialwatch.send import Report
from trialwatch.simulate.plan import Transmission
from trialwatch.simulate.view import LineView, LiveView

MOMENT = datetime(2030, 3, 1, 21, tzinfo=UTC)


def sent(what: str, subject: str = "AD-001") -> Transmission:
    return Transmission(MOMENT, 40, "records", b"{}", subject, what)


def test_the_plain_view_shows_notable_messages_and_rejections_but_not_the_diary() -> None:
    output = io.StringIO()
    view = LineView(Console(file=output, width=200), 330)
    view.day(40, MOMENT)
    report = Report("f.ndjson", "http", rejected=[{"source": "f.ndjson:2", "error": "PID-3: missing"}])
    view.sent([sent("dose"), sent("labs week 1"), sent("AE Skin infection grade 3 serious")], report)
    view.event("alert", "URGENT AE-SI AD-001 (immediate)")
    text = output.getvalue()
    assert "AE Skin infection" in text and "rejected f.ndjson:2: PID-3: missing" in text
    assert " dose" not in text and "labs week 1" not in text
    assert view.tally.rules == {"AE-SI": 1} and view.tally.severities == {"URGENT": 1} and view.tally.rejected == 1


def test_the_live_panel_counts_alerts_acknowledgements_and_escalations() -> None:
    output = io.StringIO()
    console = Console(file=output, width=120)
    view = LiveView(console, 330, "demo")
    view.day(40, MOMENT)
    view.event("alert", "HALT H-SI study (immediate)")
    view.event("ack", "acknowledged H-SI study")
    view.event("escalate", "LAB-ANC-3 AD-003 unacknowledged: escalated to tier 1")
    console.print(view.render())
    text = output.getvalue()
    assert "day  40 2030-03-01 of 330 study days" in text
    assert "alerts: HALT 1 · acknowledged 1 · escalations 1" in text and "by rule: H-SI 1" in text
