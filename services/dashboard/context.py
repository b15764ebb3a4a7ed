"""What the routes share: settings, the database engine, the plan, sessions, users, the notifier client."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

from services.dashboard.adapters.notifier_client import NotifierClient
from services.dashboard.adapters.sessions import SessionCodec
from services.dashboard.domain.plan import MonitoringPlan
from services.dashboard.settings import DashboardSettings
from shared.auth import Authenticator


class DashboardMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "trialwatch_dashboard_request_seconds",
            "Server time per request",
            ("route", "status"),
            registry=self.registry,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0),
        )

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).observe(seconds)


@dataclass
class DashboardContext:
    settings: DashboardSettings
    engine: AsyncEngine
    plan: MonitoringPlan
    codec: SessionCodec
    authenticator: Authenticator
    notifier: NotifierClient
    metrics: DashboardMetrics
    clock: Callable[[], datetime]

    async def close(self) -> None:
        await self.notifier.close()
        await self.engine.dispose()
