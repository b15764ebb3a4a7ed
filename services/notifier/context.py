"""What every notifier use case shares: the database, the routing of each study, the dispatcher, the topics,
the clock and the wake-up of the senders. Built once by ``bootstrap``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier.adapters.alerts import alert_changed
from services.notifier.adapters.tables import Alert
from services.notifier.adapters.unit import Unit, unit_of_work
from services.notifier.dispatch import SYSTEM_ACTOR, Dispatcher
from services.notifier.domain.routing_config import RoutingConfig
from services.notifier.settings import NotifierTopics
from shared.messaging.dead_letter import PoisonMessageError

__all__ = ["SYSTEM_ACTOR", "Context", "UnroutedStudyError", "Wakeups"]


class UnroutedStudyError(PoisonMessageError):
    """A signal of a study without routing configuration: dead-lettered, never silently dropped."""


@dataclass(frozen=True)
class Wakeups:
    """Who is told after a commit, and of what: the outbox relay of published records, the sender of
    queued deliveries, the scheduler of the earliest timer scheduled."""

    relay: Callable[[], None] = lambda: None
    sender: Callable[[], None] = lambda: None
    scheduler: Callable[[datetime], None] = lambda at: None


@dataclass(frozen=True)
class Context:
    sessions: async_sessionmaker[AsyncSession]
    routing: Mapping[str, RoutingConfig]
    dispatcher: Dispatcher
    topics: NotifierTopics
    clock: Callable[[], datetime]
    wakeups: Wakeups

    def config(self, study_id: str) -> RoutingConfig:
        config = self.routing.get(study_id)
        if config is None:
            raise UnroutedStudyError(f"no routing configuration for study {study_id!r}")
        return config

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[Unit]:
        """A transaction; after its commit the relay, the sender and the scheduler are told of the work it
        gave them, and only then (the sender's own round opens a unit: waking it after every unit would spin)."""
        async with unit_of_work(self.sessions) as unit:
            yield unit
        if unit.published:
            self.wakeups.relay()
        if unit.queued:
            self.wakeups.sender()
        if unit.earliest_timer is not None:
            self.wakeups.scheduler(unit.earliest_timer)

    def changed(self, unit: Unit, alert: Alert, now: datetime, actor: str | None = None) -> None:
        unit.publish(alert_changed(alert, self.topics.alerts, now, actor))
