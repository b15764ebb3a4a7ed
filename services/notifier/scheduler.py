"""Fires due timers: digests (NOTIFY bursts after the wait), escalations (not acknowledged within the
window) and clock reminders (before due_at). Each timer fires once, in the transaction of its effects;
timers are rows in PostgreSQL, so a restart loses none and fires none twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from services.notifier.adapters import alerts, pauses, timers
from services.notifier.adapters.tables import Alert, Timer
from services.notifier.adapters.unit import Unit
from services.notifier.context import SYSTEM_ACTOR, Context
from services.notifier.dispatch import CLOSED_STATES, Outgoing
from services.notifier.domain.acknowledgement import ack_roles, ack_window, escalation_receivers
from services.notifier.domain.inhibition import active_pauses, inhibitor
from services.notifier.domain.model import SignalFacts
from shared.events import Signal

TimerHandler = Callable[[Unit, Timer, datetime], Awaitable[str]]


class Scheduler:
    def __init__(self, context: Context) -> None:
        self._context = context
        self._next: datetime | None = None
        self._handlers: dict[str, TimerHandler] = {
            "digest": self._digest,
            "escalation": self._escalation,
            "reminder": self._reminder,
        }

    async def fire_due(self) -> int:
        """Fires every timer due now, one transaction each; returns how many fired."""
        count = 0
        while await self._fire_one():
            count += 1
        return count

    def expects(self, at: datetime) -> bool:
        """Notes a timer scheduled to fire ``at``; True when that is earlier than the earliest timer this
        scheduler knew of (it must then be woken to sleep less)."""
        if self._next is not None and self._next <= at:
            return False
        self._next = at
        return True

    def until_due(self) -> float | None:
        """Seconds until the earliest waiting timer, as of the last step (None: no timer waits)."""
        return None if self._next is None else (self._next - self._context.clock()).total_seconds()

    async def _fire_one(self) -> bool:
        now = self._context.clock()
        async with self._context.unit() as unit:
            timer = await timers.claim_due(unit.session, now)
            if timer is None:
                self._next = await timers.next_fire_at(unit.session)
                return False
            outcome = await self._handlers[timer.kind](unit, timer, now)
            timers.fired(timer, now, outcome)
        return True

    async def _digest(self, unit: Unit, timer: Timer, now: datetime) -> str:
        config = self._context.config(timer.study_id)
        members = await alerts.digest_members_for_update(unit.session, timer.id)
        waiting = [a for a in members if a.state == "open" and a.inhibited_by is None]
        active = active_pauses(await pauses.pause_events(unit.session, timer.study_id))
        sending: list[Alert] = []
        for alert in waiting:
            pause = inhibitor(config, SignalFacts.of(Signal.model_validate(alert.payload)), active)
            if pause is None:
                sending.append(alert)
                continue
            alert.inhibited_by, alert.ack_due_at = pause.alert_id, None
            alert.routing = alert.routing | {"mode": "inhibited"}
            unit.audit(SYSTEM_ACTOR, "alert.folded", alert.alert_id, into=pause.alert_id, rule_id=pause.rule_id)
        receivers = dict.fromkeys(name for alert in sending for name in alert.routing["receivers"])
        for name in receivers:
            mine = [alert for alert in sending if name in alert.routing["receivers"]]
            await self._context.dispatcher.queue(unit, Outgoing("digest", f"digest:{timer.id}", mine, [name]), now)
        if sending:
            unit.audit(SYSTEM_ACTOR, "digest.queued", None, timer=timer.id, alert_ids=[a.alert_id for a in sending])
        return f"{len(sending)} alert(s) to {len(receivers)} receiver(s), {len(waiting) - len(sending)} folded"

    async def _escalation(self, unit: Unit, timer: Timer, now: datetime) -> str:
        alert = await alerts.alert_for_update(unit.session, timer.alert_id or "")
        if alert is None or alert.state in CLOSED_STATES or alert.inhibited_by is not None:
            return f"skipped: {alert.state if alert else 'no alert'}"
        config = self._context.config(alert.study_id)
        severity, step = alert.payload["severity"], int(timer.detail["step"])
        receivers = escalation_receivers(config, severity, alert.routing["receivers"], step)
        window = ack_window(config, severity)
        if receivers is None or window is None:
            return "skipped: no escalation configured"
        roles = set(alert.routing["ack_roles"]) | ack_roles(config, severity, receivers)
        alert.routing = alert.routing | {"ack_roles": sorted(roles), "escalated_to": list(receivers)}
        alert.escalation_level, alert.ack_due_at, alert.updated_at = step, now + window, now
        folded = {alert.alert_id: await alerts.folded_count(unit.session, alert.alert_id)}
        note = f"Not acknowledged within {window}: escalation {step}."
        outgoing = Outgoing("escalation", f"escalation:{alert.alert_id}:{step}", [alert], receivers, note, folded)
        queued = await self._context.dispatcher.queue(unit, outgoing, now)
        unit.audit(SYSTEM_ACTOR, "alert.escalated", alert.alert_id, step=step, receivers=list(receivers))
        if escalation_receivers(config, severity, alert.routing["receivers"], step + 1) is not None:
            unit.schedule(
                key=f"escalation:{alert.alert_id}:{step + 1}",
                kind="escalation",
                study_id=alert.study_id,
                alert_id=alert.alert_id,
                fire_at=now + window,
                step=step + 1,
            )
        return f"escalation {step}: {queued} delivery(ies)"

    async def _reminder(self, unit: Unit, timer: Timer, now: datetime) -> str:
        alert = await alerts.alert_for_update(unit.session, timer.alert_id or "")
        if alert is None or alert.submitted_at is not None or alert.state == "resolved":
            return "skipped: submitted or resolved"
        before, due_at = timer.detail["before"], alert.payload.get("due_at")
        note = f"{alert.rule_id} report due at {due_at} ({before} left); submit it and record the submission."
        outgoing = Outgoing(
            "reminder", f"reminder:{alert.alert_id}:{before}", [alert], alert.routing["receivers"], note
        )
        queued = await self._context.dispatcher.queue(unit, outgoing, now)
        unit.audit(SYSTEM_ACTOR, "clock.reminder", alert.alert_id, before=before, due_at=due_at)
        return f"reminder {before}: {queued} delivery(ies)"
