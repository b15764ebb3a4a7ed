"""A signal becomes an alert, once: routed, stored, audited, and its notifications, timers and pause queued
in the same transaction, one per poll of signals (the consumer commits the poll's offsets after it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime

from services.notifier.adapters import alerts, pauses, timers
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
from shared.messaging.idempotency import first_delivery

log = get_logger(__name__)


def alert_id_for(signal: Signal) -> str:
    return deterministic_id("alert", signal.signal_id)


def _alert(signal: Signal, decision: Decision, config: RoutingConfig, now: datetime) -> Alert:
    routing = {
        "mode": decision.mode,
        "receivers": list(decision.receivers),
        "ack_roles": sorted(decision.ack_roles),
        "reasons": list(decision.reasons),
        "config_version": config.config_version,
    }
    return Alert(
        alert_id=alert_id_for(signal),
        signal_id=signal.signal_id,
        study_id=signal.study_id,
        subject_id=signal.subject_id,
        rule_id=signal.rule_id,
        severity=signal.severity,
        state="resolved" if decision.mode == "retraction" else "open",
        payload=signal.to_public(),
        routing=routing,
        ack_due_at=now + decision.ack_window if decision.ack_window else None,
        inhibited_by=decision.inhibited_by.alert_id if decision.inhibited_by else None,
        escalation_level=0,
        created_at=now,
        updated_at=now,
    )


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
            opened = [await self._open(unit, signal, now) for signal in signals]
        for signal, alert_id in zip(signals, opened, strict=True):
            log.info("signal.received", signal_id=signal.signal_id, rule_id=signal.rule_id, alert_id=alert_id)
        return opened

    async def _open(self, unit: Unit, signal: Signal, now: datetime) -> str | None:
        config = self._context.config(signal.study_id)
        if not await first_delivery(unit.session, ProcessedEvent, self._group, signal.signal_id):
            return None
        facts = SignalFacts.of(signal)
        decision = decide(config, facts, active_pauses(await pauses.pause_events(unit.session, signal.study_id)))
        alert = _alert(signal, decision, config, now)
        unit.session.add(alert)
        await unit.session.flush()
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
        await self._follow_up(unit, config, alert, decision, signal, now=now)
        await self._context.changed(unit, alert, now)
        return alert.alert_id

    async def _follow_up(
        self, unit: Unit, config: RoutingConfig, alert: Alert, decision: Decision, signal: Signal, *, now: datetime
    ) -> None:
        if decision.opens_pause:
            await self._pause(unit, alert, signal)
        if decision.mode == "immediate":
            outgoing = Outgoing("alert", f"signal:{signal.signal_id}", [alert], decision.receivers)
            await self._context.dispatcher.queue(unit, outgoing, now)
        elif decision.mode == "digest":
            digest = await timers.open_digest(unit.session, signal.study_id, now + config.timing.digest_wait)
            alert.digest_timer_id = digest.id
        elif decision.mode == "retraction":
            await self._retract(unit, alert, signal, now)
        if decision.mode in ("immediate", "digest"):
            await self._schedule_escalation(unit, config, alert, now)
        if decision.clock and signal.due_at is not None:
            await self._schedule_reminders(unit, config, alert, signal.due_at, now)

    @staticmethod
    async def _pause(unit: Unit, alert: Alert, signal: Signal) -> None:
        facts = SignalFacts.of(signal)
        event = PauseEvent(
            "pause", signal.study_id, signal.rule_id, signal.observed_at, signal.signal_id, alert.alert_id, facts
        )
        if await pauses.record_pause_event(unit.session, event):
            unit.audit(SYSTEM_ACTOR, "study.paused", alert.alert_id, rule_id=signal.rule_id, facts=asdict(facts))

    async def _retract(self, unit: Unit, alert: Alert, signal: Signal, now: datetime) -> None:
        original = await alerts.alert_of_signal_for_update(unit.session, signal.retracts or "")
        if original is None:
            return
        was_sent = original.state in ("notified", "acknowledged")
        if original.state != "resolved":
            alerts.set_state(original, "resolved", now)
            original.resolved_at, original.resolved_by = now, SYSTEM_ACTOR
            original.resolution = f"retracted by signal {signal.signal_id}"
            unit.audit(SYSTEM_ACTOR, "alert.resolved", original.alert_id, resolution=original.resolution)
            await self._context.changed(unit, original, now)
        if was_sent:
            receivers = original.routing.get("receivers", [])
            note = f"Signal {original.signal_id} ({original.rule_id}) was retracted by a correction."
            outgoing = Outgoing("retraction", f"signal:{signal.signal_id}", [alert], receivers, note)
            await self._context.dispatcher.queue(unit, outgoing, now)

    @staticmethod
    async def _schedule_escalation(unit: Unit, config: RoutingConfig, alert: Alert, now: datetime) -> None:
        routed = alert.routing["receivers"]
        if alert.ack_due_at is None or escalation_receivers(config, alert.payload["severity"], routed, 1) is None:
            return
        key = f"escalation:{alert.alert_id}:1"
        await timers.schedule(
            unit.session,
            key=key,
            kind="escalation",
            study_id=alert.study_id,
            alert_id=alert.alert_id,
            fire_at=alert.ack_due_at,
            step=1,
        )

    @staticmethod
    async def _schedule_reminders(
        unit: Unit, config: RoutingConfig, alert: Alert, due_at: datetime, now: datetime
    ) -> None:
        for offset, at in reminder_times(due_at, config.timing.clock_reminders, now):
            label = describe_offset(offset)
            await timers.schedule(
                unit.session,
                key=f"reminder:{alert.alert_id}:{label}",
                kind="reminder",
                study_id=alert.study_id,
                alert_id=alert.alert_id,
                fire_at=at,
                before=label,
            )
