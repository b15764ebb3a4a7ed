"""Local infrastructure without Docker: Kafka 4.x (KRaft, from Maven Central jars) and PostgreSQL.

CLI: ``python -m trialwatch.devstack [--stack dev|test] up [--infra-only] | down | reset | status``.

Python API (sync; safe to call from inside a running event loop, e.g. in fault tests)::

    from trialwatch import devstack
    devstack.kafka_stop("test", kill=True)   # crash the broker; returns once its ports are closed
    devstack.kafka_start("test")             # restart on the same data dir, wait until ready
    devstack.pg_stop("test")                 # pg_ctl stop -m fast ("immediate" = crash)
    devstack.pg_start("test")                # ..., then `alembic upgrade head` (migrate=False: not)

The ``*_async`` variants run the same in a worker thread so the event loop keeps running.
"""

from __future__ import annotations

import asyncio

from trialwatch.devstack import components
from trialwatch.devstack.envfile import load
from trialwatch.devstack.kafka_admin import ClusterInfo
from trialwatch.devstack.settings import Settings, load_settings
from trialwatch.devstack.stack import down, reset, status, up
from trialwatch.devstack.topics import TOPIC_NAMES, TOPICS, TopicSpec

__all__ = [
    "TOPICS",
    "TOPIC_NAMES",
    "ClusterInfo",
    "Settings",
    "TopicSpec",
    "down",
    "kafka_start",
    "kafka_start_async",
    "kafka_stop",
    "kafka_stop_async",
    "load",
    "load_settings",
    "pg_start",
    "pg_start_async",
    "pg_stop",
    "pg_stop_async",
    "reset",
    "status",
    "up",
]


def kafka_start(stack: str = "test") -> ClusterInfo:
    """Start the broker (no reformat if the data dir exists) and wait until it answers."""
    return components.kafka_start(load_settings(stack))


def kafka_stop(stack: str = "test", kill: bool = False) -> str:
    """SIGTERM + wait (SIGKILL after a timeout); ``kill=True`` sends SIGKILL at once."""
    return components.kafka_stop(load_settings(stack), kill=kill)


def pg_start(stack: str = "test", migrate: bool = True) -> None:
    """Start (or reuse) PostgreSQL and wait until it answers; then migrate, unless ``migrate=False`` (a
    restart in a fault test: the schema is there already, and the outage should last what it says)."""
    components.pg_start(load_settings(stack), migrate=migrate)


def pg_stop(stack: str = "test", mode: str = "fast") -> str:
    """``pg_ctl stop -m fast`` by default; ``mode="immediate"`` simulates a crash."""
    return components.pg_stop(load_settings(stack), mode=mode)


async def kafka_start_async(stack: str = "test") -> ClusterInfo:
    return await asyncio.to_thread(kafka_start, stack)


async def kafka_stop_async(stack: str = "test", kill: bool = False) -> str:
    return await asyncio.to_thread(kafka_stop, stack, kill)


async def pg_start_async(stack: str = "test", migrate: bool = True) -> None:
    await asyncio.to_thread(pg_start, stack, migrate)


async def pg_stop_async(stack: str = "test", mode: str = "fast") -> str:
    return await asyncio.to_thread(pg_stop, stack, mode)
