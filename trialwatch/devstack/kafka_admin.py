"""Talk to the broker with aiokafka's admin client: readiness, cluster id, explicit topics."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from trialwatch.devstack.console import DevstackError
from trialwatch.devstack.topics import TOPICS, TopicSpec

TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True)
class ClusterInfo:
    cluster_id: str
    controller_id: int
    broker_count: int


def admin_client(bootstrap: str, timeout_ms: int = 10_000) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms, client_id="trialwatch-devstack"
    )


async def describe(bootstrap: str) -> ClusterInfo:
    admin = admin_client(bootstrap)
    try:
        await admin.start()
        meta: dict[str, Any] = await admin.describe_cluster()
    finally:
        await admin.close()
    return ClusterInfo(
        cluster_id=str(meta["cluster_id"]),
        controller_id=int(meta["controller_id"]),
        broker_count=len(meta["brokers"]),
    )


@contextlib.contextmanager
def quiet_client_logs() -> Iterator[None]:
    """aiokafka logs every refused connection while the broker boots; that is expected here."""
    logger = logging.getLogger("aiokafka")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(previous)


async def wait_ready(
    bootstrap: str, within: float = 90.0, still_alive: Callable[[], bool] | None = None
) -> ClusterInfo:
    """Retry ``describe_cluster`` until the broker answers with a controller elected."""
    deadline = time.monotonic() + within
    last: Exception | None = None
    while time.monotonic() < deadline:
        if still_alive is not None and not still_alive():
            raise DevstackError("the Kafka process exited during startup")
        try:
            with quiet_client_logs():
                info = await asyncio.wait_for(describe(bootstrap), timeout=10)
            if info.broker_count and info.controller_id >= 0:
                return info
        except Exception as exc:  # any failure here just means "not ready yet"
            last = exc
        await asyncio.sleep(0.5)
    raise DevstackError(f"Kafka at {bootstrap} not ready after {within:.0f}s (last error: {last!r})")


def _check_errors(response: Any, ok_codes: Iterable[int]) -> list[str]:
    failures: list[str] = []
    for item in response.topic_errors:
        topic, code = item[0], item[1]
        if code not in ok_codes:
            failures.append(f"{topic}: error {code} {item[2] if len(item) > 2 else ''}".strip())
    return failures


async def create_topics(bootstrap: str, specs: list[TopicSpec] = TOPICS) -> tuple[list[str], list[str]]:
    """Create missing topics (idempotent). Returns (created, already_present)."""
    admin = admin_client(bootstrap, timeout_ms=30_000)
    try:
        await admin.start()
        present = set(await admin.list_topics())
        missing = [s for s in specs if s.name not in present]
        if missing:
            new = [NewTopic(s.name, s.partitions, s.replication, topic_configs=s.configs) for s in missing]
            response = await admin.create_topics(new)
            failures = _check_errors(response, ok_codes=(0, TOPIC_ALREADY_EXISTS))
            if failures:
                raise DevstackError("topic creation failed: " + "; ".join(failures))
    finally:
        await admin.close()
    created = [s.name for s in missing]
    return created, [s.name for s in specs if s.name in present]


async def delete_topics(bootstrap: str, names: list[str]) -> None:
    admin = admin_client(bootstrap, timeout_ms=30_000)
    try:
        await admin.start()
        await admin.delete_topics(names)
    finally:
        await admin.close()
