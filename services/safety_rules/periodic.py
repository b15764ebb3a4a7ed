"""Periodic background work of the service (the wall-clock tick, the lag refresh).

A round that fails is counted and logged, then retried after a growing pause (never a hot loop);
the task itself keeps running, because a database outage must delay CLOCK-BREACH, not end it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter

from shared.logs import get_logger
from shared.messaging.retry import Backoff

log = get_logger(__name__)


class PeriodicTasks:
    """Named coroutines run every ``interval`` seconds between ``start()`` and ``stop()``."""

    def __init__(self, registry: CollectorRegistry, backoff: Backoff | None = None) -> None:
        self._jobs: list[tuple[str, float, Callable[[], Awaitable[object]]]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = asyncio.Event()
        self._backoff = backoff or Backoff(first=1.0, cap=30.0)
        self.rounds = Counter(
            "safety_rules_periodic_rounds",
            "Rounds of periodic tasks, by task and outcome",
            ["task", "outcome"],
            registry=registry,
        )

    def add(self, name: str, interval: float, job: Callable[[], Awaitable[object]]) -> None:
        self._jobs.append((name, interval, job))

    async def start(self) -> None:
        self._stopped.clear()
        self._tasks = [asyncio.create_task(self._loop(*job), name=f"safety-rules-{job[0]}") for job in self._jobs]

    async def stop(self) -> None:
        self._stopped.set()
        await asyncio.gather(*self._tasks)
        self._tasks = []

    async def _loop(self, name: str, interval: float, job: Callable[[], Awaitable[object]]) -> None:
        failures = 0
        while not self._stopped.is_set():
            try:
                await job()
            except Exception as exc:  # the round is retried later; the failure is counted and logged
                failures += 1
                self.rounds.labels(name, "failed").inc()
                log.warning("periodic.failed", task=name, failures=failures, error=f"{type(exc).__name__}: {exc}")
                await self._sleep(max(interval, self._backoff.delay(failures)))
                continue
            failures = 0
            self.rounds.labels(name, "ok").inc()
            await self._sleep(interval)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopped.wait(), timeout=seconds)
        except TimeoutError:
            return
