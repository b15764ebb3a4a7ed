"""What the terminal shows while a scenario runs: the live view (rich: study days, messages, alerts and the
officer's actions as they happen), or plain lines for logs and tests (--no-live-view)."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table

from trialwatch.send import Report
from trialwatch.simulate.plan import Transmission

STYLES = {
    "alert": "bold red",
    "ack": "green",
    "submit": "cyan",
    "officer": "yellow",
    "escalate": "bold yellow",
    "sent": "white",
    "reject": "magenta",
}
ROUTINE = ("dose", "dose missed", "injection-site report", "temperature")


class View(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def day(self, study_day: int, moment: datetime) -> None: ...
    def sent(self, batch: list[Transmission], report: Report) -> None: ...
    def event(self, kind: str, text: str) -> None: ...


@dataclass
class Tally:
    total_days: int
    study_day: int = 0
    moment: datetime | None = None
    messages: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    alerts: Counter[str] = field(default_factory=Counter)
    feed: deque[tuple[str, str, str]] = field(default_factory=lambda: deque(maxlen=14))

    def record(self, batch: list[Transmission], report: Report) -> list[tuple[str, str]]:
        """Counts the batch; returns the notable lines (not the routine diary)."""
        self.messages[report.via] += len(batch)
        self.rejected += len(report.rejected)
        lines = [("sent", f"{item.subject_id or 'study'} {item.what}") for item in batch if item.what not in ROUTINE]
        lines += [("reject", f"rejected {item['source']}: {item['error']}") for item in report.rejected]
        return lines


class LineView:
    """One line per notable event: for --no-live-view and tests."""

    def __init__(self, console: Console, total_days: int) -> None:
        self.console = console
        self.tally = Tally(total_days)

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def day(self, study_day: int, moment: datetime) -> None:
        self.tally.study_day, self.tally.moment = study_day, moment

    def sent(self, batch: list[Transmission], report: Report) -> None:
        for kind, text in self.tally.record(batch, report):
            self.event(kind, text)

    def event(self, kind: str, text: str) -> None:
        if kind == "alert":
            self.tally.alerts[text.split(maxsplit=1)[0]] += 1
        moment = f"{self.tally.moment:%Y-%m-%d}" if self.tally.moment else ""
        self.console.print(
            f"day {self.tally.study_day:3d} {moment} [{STYLES.get(kind, '')}]{kind:<7} {text}[/]", highlight=False
        )


class LiveView(LineView):
    """A panel redrawn a few times a second: progress, counts and the latest events."""

    def __init__(self, console: Console, total_days: int, title: str) -> None:
        super().__init__(console, total_days)
        self.title = title
        self.live = Live(self.render(), console=console, refresh_per_second=4, transient=False)

    def start(self) -> None:
        self.live.start()

    def stop(self) -> None:
        self.live.update(self.render())
        self.live.stop()

    def day(self, study_day: int, moment: datetime) -> None:
        super().day(study_day, moment)
        self.live.update(self.render())

    def event(self, kind: str, text: str) -> None:
        if kind == "alert":
            self.tally.alerts[text.split(maxsplit=1)[0]] += 1
        moment = f"{self.tally.moment:%Y-%m-%d}" if self.tally.moment else ""
        self.tally.feed.append((f"day {self.tally.study_day:3d} {moment}", kind, text))
        self.live.update(self.render())

    def render(self) -> Panel:
        tally = self.tally
        counts = Table.grid(padding=(0, 3))
        counts.add_row(
            f"study day [bold]{tally.study_day}[/] of {tally.total_days}",
            f"sent: lab (MLLP) {tally.messages['mllp']}, EDC (HTTP) {tally.messages['http']}",
            f"rejected {tally.rejected}",
            "alerts " + ", ".join(f"{sev} {n}" for sev, n in sorted(tally.alerts.items())),
        )
        feed = Table(box=None, show_header=False, padding=(0, 1), expand=True)
        for when, kind, text in tally.feed:
            feed.add_row(f"[dim]{when}[/]", f"[{STYLES.get(kind, '')}]{kind}[/]", text)
        bar = ProgressBar(total=max(1, tally.total_days), completed=tally.study_day)
        return Panel(Group(bar, counts, feed), title=self.title, border_style="blue")
