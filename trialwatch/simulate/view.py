"""What the terminal shows while a scenario runs: the live view (rich: study days, messages, alerts and the
officer's actions as they happen), or plain lines for logs and tests (--no-live-view)."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from rich.console import Console
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
    "progress": "dim",
}
ROUTINE = ("dose", "injection-site", "temperature", "labs ", "completed")
PROGRESS_EVERY = 30  # study days between progress lines in the plain view


class View(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def day(self, study_day: int, moment: datetime) -> None: ...
    def sent(self, batch: list[Transmission], report: Report) -> None: ...
    def event(self, kind: str, text: str) -> None: ...


def notable(item: Transmission) -> bool:
    """Not the daily diary, visits and completions: what a monitor would want to see go by."""
    return "re-sent" in item.what or not item.what.startswith(ROUTINE)


@dataclass
class Tally:
    total_days: int
    study_day: int = 0
    moment: datetime | None = None
    messages: Counter[str] = field(default_factory=Counter)
    rejected: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    severities: Counter[str] = field(default_factory=Counter)
    rules: Counter[str] = field(default_factory=Counter)
    last: str = ""
    feed: deque[tuple[str, str, str]] = field(default_factory=lambda: deque(maxlen=16))

    def record(self, batch: list[Transmission], report: Report) -> list[tuple[str, str]]:
        """Counts the batch; returns the notable lines."""
        self.messages[report.via] += len(batch)
        self.rejected += len(report.rejected)
        self.last = f"{batch[-1].subject_id or 'study'} {batch[-1].what}"
        lines = [("sent", f"{item.subject_id or 'study'} {item.what}") for item in batch if notable(item)]
        lines += [("reject", f"rejected {item['source']}: {item['error']}") for item in report.rejected]
        return lines

    def count(self, kind: str, text: str) -> None:
        self.actions[kind] += 1
        if kind == "alert":
            severity, rule = text.split(maxsplit=2)[:2]
            self.severities[severity] += 1
            self.rules[rule] += 1

    @property
    def when(self) -> str:
        return f"day {self.study_day:3d} {self.moment:%Y-%m-%d}" if self.moment else ""


class LineView:
    """One line per notable event, and a progress line now and then: for --no-live-view and tests."""

    def __init__(self, console: Console, total_days: int) -> None:
        self.console = console
        self.tally = Tally(total_days)
        self.next_progress = PROGRESS_EVERY

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def day(self, study_day: int, moment: datetime) -> None:
        self.tally.study_day, self.tally.moment = study_day, moment
        if study_day >= self.next_progress:
            self.next_progress = study_day + PROGRESS_EVERY
            sent = sum(self.tally.messages.values())
            self.event("progress", f"{sent} messages sent, {self.tally.actions['alert']} alerts so far")

    def sent(self, batch: list[Transmission], report: Report) -> None:
        for kind, text in self.tally.record(batch, report):
            self.event(kind, text)

    def event(self, kind: str, text: str) -> None:
        if kind != "progress":
            self.tally.count(kind, text)
        self.show(kind, text)

    def show(self, kind: str, text: str) -> None:
        self.console.print(f"{self.tally.when} [{STYLES.get(kind, '')}]{kind:<8} {text}[/]", highlight=False)


class LiveView(LineView):
    """A panel redrawn a few times a second: progress, counts and the latest notable events."""

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
        self.tally.study_day, self.tally.moment = study_day, moment
        self.live.update(self.render())

    def show(self, kind: str, text: str) -> None:
        self.tally.feed.append((self.tally.when, kind, text))
        self.live.update(self.render())

    def render(self) -> Panel:
        tally, actions = self.tally, self.tally.actions
        severities = " · ".join(f"{sev} {n}" for sev, n in sorted(tally.severities.items())) or "none yet"
        lines: list[object] = [
            ProgressBar(total=max(1, tally.total_days), completed=tally.study_day),
            f"[bold]{tally.when or 'starting'}[/] of {tally.total_days} study days · last sent: {tally.last}",
            f"sent: lab system (HL7 over MLLP) {tally.messages['mllp']} · EDC (HTTP) {tally.messages['http']} · "
            f"rejected {tally.rejected}",
            f"alerts: {severities} · acknowledged {actions['ack']} · escalations {actions['escalate']} · "
            f"reports submitted {actions['submit']}",
            "by rule: " + ", ".join(f"{rule} {n}" for rule, n in tally.rules.items()),
            "",
        ]
        lines += [f"[dim]{when}[/] [{STYLES.get(kind, '')}]{kind:<8}[/] {text}" for when, kind, text in tally.feed]
        grid = Table.grid(expand=True)
        for line in lines:  # one row each: a progress bar does not end its line by itself
            grid.add_row(line)  # type: ignore[arg-type]
        return Panel(grid, title=self.title, border_style="blue")
