"""The periodic tasks (wall-clock tick, lag refresh): they repeat, survive a failed round, stop on demand."""

from __future__ import annotations

import asyncio
import itertools

from prometheus_client import CollectorRegistry

from services.safety_rules.periodic import PeriodicTasks
from shared.messaging.retry import Backoff


def rounds(registry: CollectorRegistry, outcome: str) -> float:
    labels = {"task": "clock", "outcome": outcome}
    return registry.get_sample_value("safety_rules_periodic_rounds_total", labels) or 0


async def test_a_failed_round_is_counted_and_retried_after_a_pause_and_the_task_keeps_running() -> None:
    registry = CollectorRegistry()
    tasks = PeriodicTasks(registry, backoff=Backoff(first=0.05, cap=0.05))
    outcomes = [RuntimeError("database away"), RuntimeError("database away"), None, None]
    calls: list[float] = []

    async def job() -> None:
        calls.append(asyncio.get_running_loop().time())
        outcome = outcomes.pop(0) if outcomes else None
        if outcome is not None:
            raise outcome

    tasks.add("clock", 0.01, job)
    await tasks.start()
    await asyncio.sleep(0.3)
    await tasks.stop()
    assert rounds(registry, "failed") == 2
    assert rounds(registry, "ok") >= 2
    pauses = [later - earlier for earlier, later in itertools.pairwise(calls)]
    assert min(pauses[:2]) >= 0.045, "a failure waits for the backoff, never a hot loop"


async def test_stop_ends_every_task_promptly() -> None:
    tasks = PeriodicTasks(CollectorRegistry())
    runs: list[str] = []

    async def job() -> None:
        runs.append("x")

    tasks.add("slow", 60.0, job)
    await tasks.start()
    await asyncio.sleep(0.05)
    await asyncio.wait_for(tasks.stop(), timeout=1.0)
    assert runs == ["x"]
