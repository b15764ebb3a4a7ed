"""A signal becomes an alert, once: routed, stored, audited, and its notifications, timers and pause queued
in the same transaction, one per poll of signals (the consumer commits the poll's offsets after it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from services.notifier.adapters import alerts, pauses, timers
from services.notifier.adapters.processed import first_deliveries
from services.notifier.adapters.tables import Alert, ProcessedEvent
from services.notifier.adapters.unit import Unit
from services.notifier.context import SYSTEM_ACTOR, Context
from services.notifier.dispatch import Outgoing
from services.notifier.domain.acknowledgement import escalation_receivers
from services.notifier.domain.clocks import describe_offset, reminder_times
from services.notifier.domain.inhibition import PauseEvent, active_pauses
from services.notifier.domain.model import SignalFacts
from services.notifier.domain.routing import Decision, decide
from services.notifier.domain.routing_config import RoutingConfig
from shared.events import Signal, deterministic_id
from shared.logs import get_logger

log = get_logger(__name__)


def alert_id_for(signal: Signal) -> str:
    return deterministic_id("alert", signal.signal_id)


def _alert_row(
    signal: Signal, decision: Decision, config: RoutingConfig, now: datetime, digest_timer_id: int | None
) -> dict[str, Any]:
    routing = {
        "mode": decision.mode,
        "receivers": list(decision.receivers),
        "ack_roles": sorted(decision.ack_roles),
        "reasons": list(decision.reasons),
        "config_version": config.config_version,
    }
    return {
        "alert_id": alert_id_for(signal),
        "signal_id": signal.signal_id,
        "study_id": signal.study_id,
        "subject_id": signal.subject_id,
        "rule_id": signal.rule_id,
        "severity": signal.severity,
        "state": "resolved" if decision.mode == "retraction" else "open",
        "payload": signal.to_public(),
        "routing": routing,
        "ack_due_at": now + decision.ack_window if decision.ack_window else None,
        "inhibited_by": decision.inhibited_by.alert_id if decision.inhibited_by else None,
        "digest_timer_id": digest_timer_id,
        "escalation_level": 0,
        "created_at": now,
        "updated_at": now,
    }


@dataclass
class Poll:
    """What one poll's transaction reads once and keeps up to date itself: which signals are new, each
    study's pause events (a HALT's pause holds for the signals after it) and its open digest."""

    unit: Unit
    now: datetime
    fresh: set[str]
    pauses: dict[str, list[PauseEvent]] = field(default_factory=dict)
    digests: dict[str, int] = field(default_factory=dict)

    async def pause_events(self, study_id: str) -> list[PauseEvent]:
        if study_id not in self.pauses:
            self.pauses[study_id] = await pauses.pause_events(self.unit.session, study_id)
        return self.pauses[study_id]

    async def digest(self, study_id: str, fire_at: datetime) -> int:
        if study_id not in self.digests:
            self.digests[study_id] = (await timers.open_digest(self.unit.session, study_id, fire_at)).id
        return self.digests[study_id]


class Intake:
    def __init__(self, context: Context, consumer_group: str) -> None:
        self._context = context
        self._group = consumer_group

    def check(self, signal: Signal) -> None:
        """Raises UnroutedStudyError (poison: dead-lettered) for a signal of a study without routing."""
        self._context.config(signal.study_id)

    async def record_batch(self, signals: Sequence[Signal]) -> list[str | None]:
        """Opens each signal's alert in one transaction, in order (a HALT's pause already holds for the
        signals after it); returns their ids, None for a signal recorded before."""
        now = self._context.clock()
        async with self._context.unit() as unit:
            ids = [signal.signal_id for signal in signals]
            poll = Poll(unit, now, await first_deliveries(unit.session, ProcessedEvent, self._group, ids))
            opened = [await self._open(poll, signal) for signal in signals]
        for signal, alert_id in zip(signals, opened, strict=True):
            log.info("signal.received", signal_id=signal.signal_id, rule_id=signal.rule_id, alert_id=alert_id)
        return opened

    async def _open(self, poll: Poll, signal: Signal) -> str | None:
        if signal.signal_id not in poll.fresh:
            return None
        poll.fresh.discard(signal.signal_id)  # the same signal twice in a poll opens one alert
        unit, now, config = poll.unit, poll.now, self._context.config(signal.study_id)
        decision = decide(config, SignalFacts.of(signal), active_pauses(await poll.pause_events(signal.study_id)))
        digest = None
        if decision.mode == "digest":
            digest = await poll.digest(signal.study_id, now + config.timing.digest_wait)
        alert = unit.open_alert(_alert_row(signal, decision, config, now, digest))
        unit.audit(
            SYSTEM_ACTOR,
            "alert.opened",
            alert.alert_id,
            signal_id=signal.signal_id,
            rule_id=signal.rule_id,
            severity=signal.severity,
            mode=decision.mode,
            receivers=list(decision.receivers),
            reasons=list(decision.reasons),
            config_version=config.config_version,
        )
        await self._follow_up(poll, config, alert, decision, signal)
        self._context.changed(unit, alert, now)
        return alert.alert_id

    async def _follow_up(
        self, poll: Poll, config: RoutingConfig, alert: Alert, decision: Decision, signal: Signal
    ) -> None:
        unit, now = poll.unit, poll.now
        if decision.opens_pause:
            await self._pause(poll, alert, signal)
        if decision.mode == "immediate":
            outgoing = Outgoing("alert", f"signal:{signal.signal_id}", [alert], decision.receivers)
            self._context.dispatcher.defer(unit, outgoing, now)
        elif decision.mode == "retraction":
            await self._retract(unit, alert, signal, now)
        if decision.mode in ("immediate", "digest"):
            self._schedule_escalation(unit, config, alert)
        if decision.clock and signal.due_at is not None:
            self._schedule_reminders(unit, config, alert, signal.due_at, now)

    @staticmethod
    async def _pause(poll: Poll, alert: Alert, signal: Signal) -> None:
        facts = SignalFacts.of(signal)
        event = PauseEvent(
            "pause", signal.study_id, signal.rule_id, signal.observed_at, signal.signal_id, alert.alert_id, facts
        )
        events = await poll.pause_events(signal.study_id)
        if await pauses.record_pause_event(poll.unit.session, event):
            events.append(event)
            poll.unit.audit(SYSTEM_ACTOR, "study.paused", alert.alert_id, rule_id=signal.rule_id, facts=asdict(facts))

    async def _retract(self, unit: Unit, alert: Alert, signal: Signal, now: datetime) -> None:
        await unit.flush()  # the original may have been opened earlier in this poll
        original = await alerts.alert_of_signal_for_update(unit.session, signal.retracts or "")
        if original is None:
            return
        was_sent = original.state in ("notified", "acknowledged")
        if original.state != "resolved":
            alerts.set_state(original, "resolved", now)
            original.resolved_at, original.resolved_by = now, SYSTEM_ACTOR
            original.resolution = f"retracted by signal {signal.signal_id}"
            unit.audit(SYSTEM_ACTOR, "alert.resolved", original.alert_id, resolution=original.resolution)
            self._context.changed(unit, original, now)
        if was_sent:
            receivers = original.routing.get("receivers", [])
            note = f"Signal {original.signal_id} ({original.rule_id}) was retracted by a correction."
            outgoing = Outgoing("retraction", f"signal:{signal.signal_id}", [alert], receivers, note)
            self._context.dispatcher.defer(unit, outgoing, now)

    @staticmethod
    def _schedule_escalation(unit: Unit, config: RoutingConfig, alert: Alert) -> None:
        routed = alert.routing["receivers"]
        if alert.ack_due_at is None or escalation_receivers(config, alert.payload["severity"], routed, 1) is None:
            return
        unit.schedule(
            key=f"escalation:{alert.alert_id}:1",
            kind="escalation",
            study_id=alert.study_id,
            alert_id=alert.alert_id,
            fire_at=alert.ack_due_at,
            step=1,
        )

    @staticmethod
    def _schedule_reminders(unit: Unit, config: RoutingConfig, alert: Alert, due_at: datetime, now: datetime) -> None:
        for offset, at in reminder_times(due_at, config.timing.clock_reminders, now):
            label = describe_offset(offset)
            unit.schedule(
                key=f"reminder:{alert.alert_id}:{label}",
                kind="reminder",
                study_id=alert.study_id,
                alert_id=alert.alert_id,
                fire_at=at,
                before=label,
            )
