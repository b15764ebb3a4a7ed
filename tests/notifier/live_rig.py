"""Rig for tests/integration/test_notifier_*.py: an isolated notifier on the real test stack.

Each rig has its own database (migrated to head), its own topics (a unique prefix), consumer groups and
HTTP port, so it shares no record, row, partition or port with any other test or stack on the same broker.
The notifier runs as ``python -m services.notifier`` subprocesses (tests/integration/harness.py) on the
test stack's env file, as an operator runs it; the SMTP server (aiosmtpd) and the webhook receiver are
real servers on loopback, run by the test (mail_rig.py). Importable from tests/integration only.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from harness import ServiceProcess
from safety_rules_service.live_rig import create_database, drop_database, free_port
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from notifier.routing_docs import write_document
from services.notifier.domain.model import Role
from services.notifier.settings import NotifierTopics
from shared.auth import dev_token
from shared.events import RecordIngested, Signal
from shared.messaging.broker import aiokafka_options
from shared.settings import KafkaSettings
from trialwatch.devstack import envfile
from trialwatch.devstack.paths import REPO_ROOT
from trialwatch.devstack.settings import Settings
from trialwatch.devstack.topics import TOPICS

PARTITIONS = {spec.name: spec.partitions for spec in TOPICS}
FAST = {
    "TRIALWATCH_NOTIFIER_RETRY_FIRST": "0.2",
    "TRIALWATCH_NOTIFIER_RETRY_CAP": "0.5",
    "TRIALWATCH_NOTIFIER_LEASE_SECONDS": "6",  # must outlast the waits after the point of no return:
    "TRIALWATCH_NOTIFIER_POLL_INTERVAL": "0.2",
    "TRIALWATCH_NOTIFIER_METRICS_INTERVAL": "0.5",
    "TRIALWATCH_SMTP_TIMEOUT": "2",  # 2 replies x 2 s + 1 s QUIT
    "TRIALWATCH_WEBHOOK_TIMEOUT": "1.5",  # connect, write, read x 1.5 s
    "PYTHONUNBUFFERED": "1",
}


@dataclass
class NotifierRig:
    """An isolated notifier deployment: database, topics, groups, routing file, SMTP port, its processes."""

    cfg: Settings
    database_url: str
    engine: AsyncEngine
    routing_path: Path
    smtp_port: int
    log_dir: Path
    prefix: str = field(default_factory=lambda: f"it.{uuid.uuid4().hex[:8]}.")
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: list[ServiceProcess] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    @property
    def topics(self) -> NotifierTopics:
        return NotifierTopics.with_prefix(self.prefix)

    @property
    def topic_names(self) -> list[str]:
        topics = self.topics
        return [topics.signals, topics.events, topics.alerts, topics.records, topics.dead_letter]

    def partitions(self, topic: str) -> int:
        return PARTITIONS[topic.removeprefix(self.prefix)]

    @property
    def kafka(self) -> KafkaSettings:
        return KafkaSettings.from_mapping(self.cfg.env)

    def env(self) -> dict[str, str]:
        env = {**os.environ, **FAST, "TRIALWATCH_ENV_FILE": str(envfile.env_path("test"))}
        env |= {
            "DATABASE_URL": self.database_url,
            "TRIALWATCH_NOTIFIER_PORT": str(self.port),
            "TRIALWATCH_NOTIFIER_TOPIC_PREFIX": self.prefix,
            "TRIALWATCH_NOTIFIER_CONSUMER_GROUP": f"{self.prefix}notifier",
            "TRIALWATCH_NOTIFIER_DECISIONS_GROUP": f"{self.prefix}notifier-decisions",
            "TRIALWATCH_ROUTING": str(self.routing_path),
            "TRIALWATCH_SMTP_PORT": str(self.smtp_port),
        }
        return env | self.extra_env

    def start(self) -> ServiceProcess:
        """One more ``python -m services.notifier`` (tests/integration/harness.py), on this rig's port."""
        run_dir = self.log_dir / f"run-{len(self.processes) + 1}"
        run_dir.mkdir()
        cfg = replace(self.cfg, env={**self.cfg.env, "TRIALWATCH_NOTIFIER_PORT": str(self.port)})
        process = ServiceProcess("notifier", cfg, run_dir, self.env())
        self.processes.append(process)
        process.start()
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            process.stop()

    def logs(self) -> str:
        return "".join(f"\n--- notifier run {n} log (tail)\n{p.log()[-3000:]}" for n, p in enumerate(self.processes, 1))

    def token(self, role: Role) -> str:
        return dev_token(self.cfg.env["TRIALWATCH_TOKEN"], role)

    async def api(self, method: str, path: str, role: Role | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token(role)}"} if role else {}
        headers |= kwargs.pop("headers", {})
        async with httpx.AsyncClient(timeout=10.0) as client:
            return await client.request(method, f"http://127.0.0.1:{self.port}{path}", headers=headers, **kwargs)

    async def publish(self, topic: str, values: Sequence[bytes], key: bytes = b"ANAKINRA-AD") -> None:
        producer = AIOKafkaProducer(enable_idempotence=True, **aiokafka_options(self.kafka))
        await producer.start()
        try:
            for value in values:
                await producer.send_and_wait(topic, value, key=key)
        finally:
            await producer.stop()

    async def send_signals(self, signals: Sequence[Signal]) -> None:
        await self.publish(self.topics.signals, [s.model_dump_json().encode() for s in signals])

    async def send_records(self, records: Sequence[RecordIngested]) -> None:
        await self.publish(self.topics.events, [r.model_dump_json().encode() for r in records])

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.engine.connect() as connection:
            return (await connection.execute(text(sql), params)).scalar()

    async def rows(self, sql: str, **params: Any) -> list[Any]:
        async with self.engine.connect() as connection:
            return list((await connection.execute(text(sql), params)).all())

    def audit_verify(self) -> subprocess.CompletedProcess[str]:
        """``trialwatch audit verify`` on this rig's database, as an operator runs it."""
        argv = [sys.executable, "-m", "trialwatch.cli", "audit", "verify", "--database", self.database_url]
        return subprocess.run(
            argv, cwd=REPO_ROOT, env=self.env(), capture_output=True, text=True, timeout=120, check=False
        )

    async def eventually(self, probe: Callable[[], Awaitable[bool]], what: str, seconds: float = 60.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if await probe():
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"not within {seconds:.0f}s: {what}{self.logs()}")


@asynccontextmanager
async def isolated_rig(
    cfg: Settings,
    admin: AIOKafkaAdminClient,
    tmp_path: Path,
    *,
    routing: dict[str, Any],
    smtp_port: int,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[NotifierRig]:
    """A fresh database and topic set for one test; everything is removed afterwards."""
    name = f"it_notifier_{uuid.uuid4().hex[:10]}"
    url = await asyncio.to_thread(create_database, cfg, name)
    engine = create_async_engine(url)
    routing_path = write_document(routing, tmp_path / "test.routing.yaml")
    rig = NotifierRig(cfg, url, engine, routing_path, smtp_port, tmp_path, extra_env=extra_env or {})
    await admin.create_topics([NewTopic(topic, rig.partitions(topic), 1) for topic in rig.topic_names])
    try:
        yield rig
    finally:
        rig.stop_all()
        await engine.dispose()
        await admin.delete_topics(rig.topic_names)
        await asyncio.to_thread(drop_database, cfg, name)
