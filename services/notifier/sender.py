"""Sends queued deliveries: claim (the attempt is recorded and committed first), send, record the outcome.

Transient failures retry with exponential backoff; a permanent failure, or the last allowed attempt, marks
the delivery FAILED, dead-letters it (trialwatch.dlq.v1) and alerts the routing's ``failures.notify``
receivers (admin), unless the failed delivery was itself such an alert.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.notifier.adapters import alerts, deliveries
from services.notifier.adapters.channels import PermanentDeliveryError, Sender, TransientDeliveryError
from services.notifier.adapters.tables import Delivery
from services.notifier.adapters.unit import Unit
from services.notifier.context import SYSTEM_ACTOR, Context
from services.notifier.metrics import NotifierMetrics
from shared.events import deterministic_id
from shared.messaging.outbox import OutboxMessage
from shared.messaging.retry import Backoff


@dataclass(frozen=True)
class SendPolicy:
    batch: int
    concurrency: int
    lease: timedelta
    max_attempts: int
    backoff: Backoff


@dataclass(frozen=True)
class Outcome:
    error: str | None = None
    permanent: bool = False


class DeliverySender:
    def __init__(
        self, context: Context, channels: Mapping[str, Sender], policy: SendPolicy, metrics: NotifierMetrics
    ) -> None:
        self._context = context
        self._channels = channels
        self._policy = policy
        self._metrics = metrics
        self._slots = asyncio.Semaphore(policy.concurrency)

    async def send_due(self) -> int:
        """One round: claim a batch, send it (``concurrency`` at a time), record each outcome."""
        async with self._context.sessions.begin() as session:
            claimed = await deliveries.claim(session, self._context.clock(), self._policy.lease, self._policy.batch)
        await asyncio.gather(*(self._deliver(row) for row in claimed))
        return len(claimed)

    async def _deliver(self, row: Delivery) -> None:
        async with self._slots:
            outcome = await self._attempt(row)
        await self._record(row.id, outcome)

    async def _attempt(self, row: Delivery) -> Outcome:
        try:
            await self._channels[row.channel].send(row)
        except PermanentDeliveryError as error:
            return Outcome(str(error), permanent=True)
        except TransientDeliveryError as error:
            return Outcome(str(error))
        except Exception as error:  # an unforeseen failure is recorded on the delivery and retried, never lost
            return Outcome(f"{type(error).__name__}: {error}")
        return Outcome()

    async def _record(self, delivery_id: int, outcome: Outcome) -> None:
        now = self._context.clock()
        async with self._context.unit() as unit:
            row = await deliveries.delivery_for_update(unit.session, delivery_id)
            if row is None:
                return
            if outcome.error is None:
                await self._delivered(unit, row, now)
            elif not outcome.permanent and row.attempts < self._policy.max_attempts:
                deliveries.retry_later(
                    row, outcome.error, now + timedelta(seconds=self._policy.backoff.delay(row.attempts))
                )
                self._metrics.attempts.labels(row.channel, "retry").inc()
            else:
                await self._failed(unit, row, outcome.error, now)

    async def _delivered(self, unit: Unit, row: Delivery, now: datetime) -> None:
        deliveries.delivered(row, now)
        self._metrics.attempts.labels(row.channel, "delivered").inc()
        for alert in await alerts.alerts_for_update(unit.session, row.alert_ids):
            if alert.state == "open":
                alerts.set_state(alert, "notified", now)
                alert.notified_at = now
                await self._context.changed(unit, alert, now)
        unit.audit(SYSTEM_ACTOR, "delivery.delivered", row.alert_id, **deliveries.describe(row))

    async def _failed(self, unit: Unit, row: Delivery, error: str, now: datetime) -> None:
        deliveries.failed(row, error)
        self._metrics.attempts.labels(row.channel, "failed").inc()
        described = deliveries.describe(row)
        unit.audit(SYSTEM_ACTOR, "delivery.failed", row.alert_id, error=error, **described)
        related = await alerts.alerts_for_update(unit.session, row.alert_ids)
        study_id = related[0].study_id if related else ""
        await unit.publish(
            OutboxMessage(
                event_id=deterministic_id("delivery-failed", str(row.id)),
                topic=self._context.topics.dead_letter,
                key=study_id,
                payload=described | {"error": error},
                headers={"x-reason": error[:1000], "x-source": "notifier.delivery", "x-attempts": str(row.attempts)},
            )
        )
        if row.kind != "failure" and study_id in self._context.routing:
            config = self._context.routing[study_id]
            await self._context.dispatcher.queue_failure(unit, config, described, error, now)
