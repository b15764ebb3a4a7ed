"""Prometheus metrics of the notifier: open alerts by severity, the oldest unacknowledged alert's age,
deliveries by channel and status (from PostgreSQL, so they survive restarts) and this process's attempts.
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier.adapters.tables import Alert, Delivery

OPEN_STATES = ("open", "notified")
SEVERITIES = ("INFO", "NOTIFY", "URGENT", "HALT")
STATUSES = ("PENDING", "DELIVERED", "FAILED")
CHANNELS = ("email", "webhook")


class NotifierMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.open_alerts = Gauge(
            "trialwatch_notifier_open_alerts",
            "Alerts open or notified, not yet acknowledged",
            ["severity"],
            registry=registry,
        )
        self.oldest_unacknowledged = Gauge(
            "trialwatch_notifier_oldest_unacknowledged_seconds",
            "Age of the oldest alert awaiting acknowledgement (0 when none)",
            ["severity"],
            registry=registry,
        )
        self.deliveries = Gauge(
            "trialwatch_notifier_deliveries",
            "Deliveries by channel and status",
            ["channel", "status"],
            registry=registry,
        )
        self.unconfirmed = Gauge(
            "trialwatch_notifier_unconfirmed_deliveries",
            "Deliveries recorded DELIVERED without the receiver's answer (in doubt at a crash or a lost "
            "connection); never sent again, told to admin",
            ["channel"],
            registry=registry,
        )
        self.attempts = Counter(
            "trialwatch_notifier_delivery_attempts",
            "Send attempts of this process by channel and outcome (delivered, retry, failed, unconfirmed)",
            ["channel", "outcome"],
            registry=registry,
        )

    async def refresh(self, sessions: async_sessionmaker[AsyncSession], now: datetime) -> int:
        async with sessions() as session:
            await self._alerts(session, now)
            await self._deliveries(session)
        return 0

    async def _alerts(self, session: AsyncSession, now: datetime) -> None:
        open_query = select(Alert.severity, func.count()).where(Alert.state.in_(OPEN_STATES)).group_by(Alert.severity)
        counts = dict((await session.execute(open_query)).tuples().all())
        awaiting = Alert.state.in_(OPEN_STATES) & Alert.ack_due_at.is_not(None)
        oldest_query = select(Alert.severity, func.min(Alert.created_at)).where(awaiting).group_by(Alert.severity)
        oldest = dict((await session.execute(oldest_query)).tuples().all())
        for severity in SEVERITIES:
            self.open_alerts.labels(severity).set(counts.get(severity, 0))
            since = oldest.get(severity)
            self.oldest_unacknowledged.labels(severity).set((now - since).total_seconds() if since else 0.0)

    async def _deliveries(self, session: AsyncSession) -> None:
        query = select(Delivery.channel, Delivery.status, func.count()).group_by(Delivery.channel, Delivery.status)
        counts = {(channel, status): n for channel, status, n in (await session.execute(query)).tuples().all()}
        unconfirmed_query = (
            select(Delivery.channel, func.count()).where(Delivery.unconfirmed.is_not(None)).group_by(Delivery.channel)
        )
        unconfirmed = dict((await session.execute(unconfirmed_query)).tuples().all())
        for channel in CHANNELS:
            for status in STATUSES:
                self.deliveries.labels(channel, status).set(counts.get((channel, status), 0))
            self.unconfirmed.labels(channel).set(unconfirmed.get(channel, 0))
