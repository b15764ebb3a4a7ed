"""The simulated safety officer: reads alerts through the notifier API with a role token, acknowledges
every notified alert except those the scenario leaves alone (so escalation shows), and records the expedited
report of each regulatory clock some time after its Day 0 — one of them after its due time, so the data clock
breaches it (SAFETY_RULES §5). Like a real officer it reads (and acknowledges) a clock's alert before it files
the report: a report recorded first would resolve the alert unread."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from shared.auth import dev_token
from trialwatch.simulate.scenario import duration

TIMEOUT = 30.0
#: How long a report waits for its alert to be delivered (notified) before it is filed all the same.
NOTIFIED_SECONDS = 60.0
NOTIFIED_POLL_SECONDS = 0.2
#: Routing modes whose alerts are delivered (INFO is stored, never sent; folded alerts ride on the pause's).
SENT_MODES = ("immediate", "digest")


@dataclass(frozen=True)
class Submission:
    at: datetime  # data time at which the report is submitted
    signal_id: str
    alert_id: str
    clock: str
    subject_id: str | None
    late: bool


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class SafetyOfficer:
    def __init__(
        self, env: Mapping[str, str], officer: Mapping[str, Any], study_id: str, notify: Callable[[str, str], None]
    ) -> None:
        host, port = env.get("TRIALWATCH_BIND_HOST", "127.0.0.1"), env["TRIALWATCH_NOTIFIER_PORT"]
        token = dev_token(env["TRIALWATCH_TOKEN"], officer.get("role", "safety_officer"))
        self.client = httpx.AsyncClient(
            base_url=f"http://{host}:{port}/v1", timeout=TIMEOUT, headers={"Authorization": f"Bearer {token}"}
        )
        self.study_id = study_id
        self.leave = [dict(item) for item in officer.get("leave_unacknowledged", [])]
        self.after = {clock: duration(text) for clock, text in officer["submission_after"].items()}
        self.late = {
            (item["clock"], item["subject"]): duration(item["after_due"])
            for item in officer.get("late_submissions", [])
        }
        self.notify = notify  # (kind, text) for the view
        self.seen: dict[str, dict[str, Any]] = {}
        self.acknowledged: set[str] = set()
        self.left: set[str] = set()
        self.pending: dict[str, Submission] = {}
        self.submitted: list[tuple[Submission, dict[str, Any]]] = []
        self._polling = asyncio.Lock()
        self.before: set[str] = set()

    async def close(self) -> None:
        await self.client.aclose()

    def leaves_alone(self, alert: Mapping[str, Any]) -> bool:
        return any(
            all(alert.get("subject_id" if key == "subject" else key) == value for key, value in rule.items())
            for rule in self.leave
        )

    async def poll(self) -> None:
        """One look at the alerts; a caller waits for a look already under way (the run relies on the
        clocks of a serious AE being scheduled once its poll returns)."""
        async with self._polling:
            await self._poll()

    async def _poll(self) -> None:
        for alert in reversed(await self._alerts()):  # oldest first
            if alert["alert_id"] not in self.before:
                await self._look_at(alert)

    def undelivered(self) -> list[dict[str, Any]]:
        """Alerts seen still open although they are to be sent (at once or in a digest, not folded into a
        pause): the officer has not had them yet."""
        return [
            alert
            for alert in self.seen.values()
            if alert["state"] == "open" and alert["mode"] in SENT_MODES and alert["inhibited_by"] is None
        ]

    async def _alerts(self) -> list[dict[str, Any]]:
        response = await self.client.get("/alerts", params={"study_id": self.study_id, "limit": 1000})
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()
        return alerts

    async def start(self) -> None:
        """Alerts from before the run (a stack that was not fresh) are not this officer's business."""
        self.before = {alert["alert_id"] for alert in await self._alerts()}

    async def _look_at(self, alert: dict[str, Any]) -> None:
        alert_id = alert["alert_id"]
        if alert_id not in self.seen:
            self.seen[alert_id] = alert
            who = alert["subject_id"] or "study"
            self.notify("alert", f"{alert['severity']:<6} {alert['rule_id']} {who} ({alert['mode'] or 'opened'})")
            if alert["rule_id"] in self.after:
                await self._schedule(alert)
        if alert["escalation_level"] > self.seen[alert_id]["escalation_level"]:
            who = alert["subject_id"] or "study"
            self.notify(
                "escalate", f"{alert['rule_id']} {who} unacknowledged: escalated to tier {alert['escalation_level']}"
            )
        self.seen[alert_id] = alert
        if alert["state"] != "notified" or alert_id in self.acknowledged or alert_id in self.left:
            return
        if self.leaves_alone(alert):
            self.left.add(alert_id)
            self.notify("officer", f"leaves {alert['rule_id']} {alert['subject_id']} unacknowledged")
            return
        answer = await self.client.post(f"/alerts/{alert_id}/ack", json={"comment": "seen by the simulated officer"})
        if answer.status_code in (200, 409):  # 409: acknowledged or resolved meanwhile
            self.acknowledged.add(alert_id)
            if answer.status_code == 200:
                self.notify("ack", f"acknowledged {alert['rule_id']} {alert['subject_id'] or 'study'}")
        else:
            answer.raise_for_status()

    async def _schedule(self, alert: Mapping[str, Any]) -> None:
        detail = (await self.client.get(f"/alerts/{alert['alert_id']}")).raise_for_status().json()
        signal = detail["signal"]
        if signal.get("status") != "RAISED" or "due_at" not in signal:
            return
        clock, subject = signal["rule_id"], signal.get("subject_id")
        late = self.late.get((clock, subject))
        if late is not None:
            at = parse_time(signal["due_at"]) + late
        else:
            at = parse_time(signal["observed_at"]) + self.after[clock]
        self.pending[signal["signal_id"]] = Submission(
            at, signal["signal_id"], alert["alert_id"], clock, subject, late is not None
        )

    def due(self, data_time: datetime) -> list[Submission]:
        return sorted((item for item in self.pending.values() if item.at <= data_time), key=lambda item: item.at)

    async def _read_first(self, alert_id: str) -> None:
        """Waits (bounded) until the alert is delivered, then looks at it (acknowledging it unless the
        scenario leaves it alone)."""
        deadline = time.monotonic() + NOTIFIED_SECONDS
        while True:
            alert = (await self.client.get(f"/alerts/{alert_id}")).raise_for_status().json()
            if alert["state"] != "open" or time.monotonic() >= deadline:
                break
            await asyncio.sleep(NOTIFIED_POLL_SECONDS)
        async with self._polling:
            await self._look_at(alert)

    async def submit(self, submission: Submission) -> dict[str, Any] | None:
        """Records the report; returns the REG record the notifier published (it stops the engine's clock),
        None when the notifier had it already."""
        self.pending.pop(submission.signal_id, None)
        await self._read_first(submission.alert_id)
        body = {"submitted_at": submission.at.isoformat()}
        answer = await self.client.post(f"/clocks/{submission.signal_id}/submitted", json=body)
        if answer.status_code == httpx.codes.CONFLICT:  # recorded before (a scenario run twice on one stack)
            self.notify("officer", f"{submission.clock} report for {submission.subject_id}: {answer.json()['detail']}")
            return None
        answer.raise_for_status()
        record: dict[str, Any] = answer.json()["published"]
        self.submitted.append((submission, record))
        when = "LATE, " if submission.late else ""
        stamp = f"{when}{submission.at:%Y-%m-%d %H:%M}"
        self.notify("submit", f"{submission.clock} report for {submission.subject_id} submitted ({stamp})")
        return record
