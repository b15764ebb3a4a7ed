"""Sends queued deliveries a round at a time: claim a batch (the attempts are committed first), send it,
record its outcomes in one transaction.

The point of no return (SMTP DATA, the webhook request) is preceded by its own commit, the in-doubt
marker. Before it nothing can have arrived, so any failure, or a crash, is retried safely. After it, a
delivery whose answer was lost is never sent again: it is recorded DELIVERED and ``unconfirmed``,
audited, and told to the routing's ``failures.notify`` receivers (admin). The alert's escalation timer
runs regardless, so an alert nobody acknowledges is re-notified: nothing is lost, nothing is doubled.

Transient failures retry with exponential backoff; a permanent failure, or the last allowed attempt, marks
the delivery FAILED, dead-letters it (trialwatch.dlq.v1) and alerts the admin receivers too. A notice
about a notice is never raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.adapters import alerts, deliveries
from services.notifier.adapters.channels import (
    InDoubtDeliveryError,
    PermanentDeliveryError,
    Sender,
    TransientDeliveryError,
)
from services.notifier.adapters.tables import Alert, Delivery
from services.notifier.adapters.unit import Unit
from services.notifier.context import SYSTEM_ACTOR, Context
from services.notifier.domain.messages import NoticeKind
from services.notifier.metrics import NotifierMetrics
from shared.events import deterministic_id
from shared.logs import get_logger
from shared.messaging.outbox import OutboxMessage
from shared.messaging.retry import Backoff

NOTICE_KINDS = frozenset({"failure", "unconfirmed"})
LOST_AT_CRASH = (
    "confirmation lost at crash: the sender stopped after the point of no return (in doubt since {since}) "
    "and before the receiver's answer was recorded; not sent again"
)

log = get_logger(__name__)


@dataclass(frozen=True)
class SendPolicy:
    batch: int
    concurrency: int
    lease: timedelta
    max_attempts: int
    backoff: Backoff


@dataclass(frozen=True)
class Outcome:
    reply: str | None = None
    error: str = ""
    permanent: bool = False
    in_doubt: bool = False


@dataclass(frozen=True)
class Attempted:
    """The outcome of one attempt, to be recorded if that attempt still holds the row."""

    delivery_id: int
    attempt: int
    outcome: Outcome


class LostClaimError(Exception):
    """Another attempt holds the row now: this one sends nothing more and records nothing."""


class PointOfNoReturnMarker:
    """Commits ``in_doubt_since`` for one attempt, fenced by its attempt number; remembers that it did.

    One autocommitted statement on a connection of ``markers`` (an engine without the pool's pre-ping): a
    round trip, where a transaction takes four. If it fails, whether or not PostgreSQL committed it, the
    channel sends nothing, and the outcome's record (fenced by the attempt) clears the marker again.
    """

    def __init__(self, context: Context, markers: AsyncEngine, row: Delivery, lease: timedelta) -> None:
        self._context, self._markers, self._row, self._lease = context, markers, row, lease
        self.committed = False
        self.lost = False

    async def __call__(self) -> None:
        async with self._markers.connect() as connection:
            now = self._context.clock()
            held = await deliveries.mark_in_doubt(connection, self._row.id, self._row.attempts, now, self._lease)
        if not held:
            self.lost = True
            raise LostClaimError(f"delivery {self._row.id} attempt {self._row.attempts} was taken over")
        self.committed = True


class DeliverySender:
    def __init__(
        self,
        context: Context,
        channels: Mapping[str, Sender],
        policy: SendPolicy,
        metrics: NotifierMetrics,
        markers: AsyncEngine,
    ) -> None:
        self._context = context
        self._markers = markers
        self._channels = channels
        self._policy = policy
        self._metrics = metrics
        self._slots = asyncio.Semaphore(policy.concurrency)
        self._next: datetime | None = None

    async def send_due(self) -> int:
        """One round: settle deliveries left in doubt, claim a batch, send it (``concurrency`` at a time)."""
        settled = await self.settle_in_doubt()
        async with self._context.sessions.begin() as session:
            claimed = await deliveries.claim(session, self._context.clock(), self._policy.lease, self._policy.batch)
            if not claimed:
                self._next = await deliveries.next_due(session)
        if not claimed:
            for channel in self._channels.values():
                await channel.rest()
        attempted = await asyncio.gather(*(self._deliver(row) for row in claimed))
        await self._record([outcome for outcome in attempted if outcome is not None])
        return settled + len(claimed)

    def until_due(self) -> float | None:
        """Seconds until a pending delivery is due, as of the last round that claimed none (None: none pends)."""
        return None if self._next is None else (self._next - self._context.clock()).total_seconds()

    async def settle_in_doubt(self) -> int:
        """Deliveries whose sender died past the point of no return: DELIVERED, unconfirmed, never re-sent."""
        now = self._context.clock()
        async with self._context.unit() as unit:
            rows = await deliveries.in_doubt_expired(unit.session, now, self._policy.batch)
            for row in rows:
                since = row.in_doubt_since.isoformat() if row.in_doubt_since else "?"
                await self._unconfirmed(unit, row, LOST_AT_CRASH.format(since=since), now)
        return len(rows)

    async def _deliver(self, row: Delivery) -> Attempted | None:
        attempt = row.attempts
        async with self._slots:
            outcome = await self._attempt(row)
        return None if outcome is None else Attempted(row.id, attempt, outcome)

    async def _attempt(self, row: Delivery) -> Outcome | None:
        marker = PointOfNoReturnMarker(self._context, self._markers, row, self._policy.lease)
        try:
            reply = await self._channels[row.channel].send(row, marker)
        except PermanentDeliveryError as error:
            return Outcome(error=str(error), permanent=True)
        except TransientDeliveryError as error:
            return Outcome(error=str(error))
        except InDoubtDeliveryError as error:
            return Outcome(error=str(error), in_doubt=True)
        except Exception as error:  # unforeseen: recorded on the delivery, retried only if nothing can have left
            if marker.lost:
                return None
            return Outcome(error=f"{type(error).__name__}: {error}", in_doubt=marker.committed)
        return Outcome(reply=reply)

    async def _record(self, batch: list[Attempted]) -> None:
        """Records a round's outcomes in one transaction (a crash before it leaves the round's deliveries
        that passed the point of no return in doubt: settled as unconfirmed, never sent again)."""
        if not batch:
            return
        now = self._context.clock()
        async with self._context.unit() as unit:
            held = await deliveries.deliveries_for_update(unit.session, [(a.delivery_id, a.attempt) for a in batch])
            # settled meanwhile (the lease ran out) when not held: the first record stands
            outcomes = [(held[a.delivery_id], a.outcome) for a in batch if a.delivery_id in held]
            sent = [row for row, outcome in outcomes if outcome.reply is not None or outcome.in_doubt]
            related = await alerts.alerts_for_update(unit.session, (i for row in sent for i in row.alert_ids))
            locked = {alert.alert_id: alert for alert in related}
            for row, outcome in outcomes:
                await self._settle(unit, row, outcome, locked, now)

    async def _settle(
        self, unit: Unit, row: Delivery, outcome: Outcome, locked: Mapping[str, Alert], now: datetime
    ) -> None:
        if outcome.reply is not None:
            await self._delivered(unit, row, outcome.reply, locked, now)
        elif outcome.in_doubt:
            await self._unconfirmed(unit, row, outcome.error, now, locked)
        elif not outcome.permanent and row.attempts < self._policy.max_attempts:
            again = now + timedelta(seconds=self._policy.backoff.delay(row.attempts))
            deliveries.retry_later(row, outcome.error, again)
            self._metrics.attempts.labels(row.channel, "retry").inc()
        else:
            await self._failed(unit, row, outcome.error, now)

    def _notified(self, unit: Unit, row: Delivery, locked: Mapping[str, Alert], now: datetime) -> None:
        for alert in (locked[alert_id] for alert_id in row.alert_ids if alert_id in locked):
            if alert.state == "open":
                alerts.set_state(alert, "notified", now)
                alert.notified_at = now
                self._context.changed(unit, alert, now)

    async def _delivered(
        self, unit: Unit, row: Delivery, reply: str, locked: Mapping[str, Alert], now: datetime
    ) -> None:
        deliveries.delivered(row, now, reply)
        self._metrics.attempts.labels(row.channel, "delivered").inc()
        self._notified(unit, row, locked, now)
        unit.audit(SYSTEM_ACTOR, "delivery.delivered", row.alert_id, reply=row.server_reply, **deliveries.describe(row))

    async def _unconfirmed(
        self, unit: Unit, row: Delivery, reason: str, now: datetime, locked: Mapping[str, Alert] | None = None
    ) -> None:
        deliveries.unconfirmed(row, reason)
        self._metrics.attempts.labels(row.channel, "unconfirmed").inc()
        if locked is None:
            locked = {alert.alert_id: alert for alert in await alerts.alerts_for_update(unit.session, row.alert_ids)}
        self._notified(unit, row, locked, now)
        described = deliveries.describe(row)
        unit.audit(SYSTEM_ACTOR, "delivery.unconfirmed", row.alert_id, reason=reason, **described)
        log.warning("delivery.unconfirmed", delivery_id=row.id, message_id=row.message_id, reason=reason)
        await self._tell_admins(unit, row, "unconfirmed", reason, now)

    async def _failed(self, unit: Unit, row: Delivery, error: str, now: datetime) -> None:
        deliveries.failed(row, error)
        self._metrics.attempts.labels(row.channel, "failed").inc()
        described = deliveries.describe(row)
        unit.audit(SYSTEM_ACTOR, "delivery.failed", row.alert_id, error=error, **described)
        study_id = await self._study_of(unit, row)
        unit.publish(
            OutboxMessage(
                event_id=deterministic_id("delivery-failed", str(row.id)),
                topic=self._context.topics.dead_letter,
                key=study_id,
                payload=described | {"error": error},
                headers={"x-reason": error[:1000], "x-source": "notifier.delivery", "x-attempts": str(row.attempts)},
            )
        )
        await self._tell_admins(unit, row, "failure", error, now)

    @staticmethod
    async def _study_of(unit: Unit, row: Delivery) -> str:
        related = await alerts.alerts_for_update(unit.session, row.alert_ids)
        return related[0].study_id if related else ""

    async def _tell_admins(self, unit: Unit, row: Delivery, kind: NoticeKind, reason: str, now: datetime) -> None:
        study_id = await self._study_of(unit, row)
        if row.kind in NOTICE_KINDS or study_id not in self._context.routing:
            return
        config = self._context.routing[study_id]
        await self._context.dispatcher.queue_notice(
            unit, config, kind, delivery=deliveries.describe(row), reason=reason, now=now
        )
