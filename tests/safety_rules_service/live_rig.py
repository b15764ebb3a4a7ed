"""Harness for tests/integration/test_rules_live.py: an isolated safety_rules on the real test stack.

Each rig has its own database (migrated to head), its own topics (a unique prefix) and consumer group,
so it shares no record, row or partition with any other test or stack on the same broker. Services
run as `python -m services.safety_rules` subprocesses on the test stack's env file, as an operator
runs them; `trialwatch signals` and `trialwatch replay` run as the command-line tool.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from services.safety_rules.settings import RulesTopics
from shared.messaging.broker import aiokafka_options
from shared.settings import KafkaSettings
from trialwatch.devstack import envfile, pg_cluster, pg_layout
from trialwatch.devstack.paths import ALEMBIC_INI, REPO_ROOT
from trialwatch.devstack.settings import Settings

STARTUP_SECONDS = 60.0
STOP_SECONDS = 30.0
SERVICE_SETTINGS = {
    "TRIALWATCH_RULES_CLOCK_INTERVAL": "0.5",
    "TRIALWATCH_RULES_LAG_INTERVAL": "0.5",
    "TRIALWATCH_RULES_MAX_ATTEMPTS": "3",
    "TRIALWATCH_RULES_RETRY_FIRST": "0.05",
    "TRIALWATCH_RULES_RETRY_CAP": "0.2",
    "PYTHONUNBUFFERED": "1",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run_tool(argv: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(argv, env=env, cwd=REPO_ROOT, capture_output=True, timeout=120, check=False)


def create_database(cfg: Settings, name: str) -> str:
    """A new, migrated database in the test cluster; returns its URL."""
    owner = cfg.pg_target().user
    pg_cluster.psql(cfg, pg_layout.layout(cfg), f'CREATE DATABASE "{name}" OWNER "{owner}";')
    url = cfg.database_url.rsplit("/", 1)[0] + f"/{name}"
    argv = [sys.executable, "-m", "alembic", "-c", str(ALEMBIC_INI), "upgrade", "head"]
    migrated = run_tool(argv, {**os.environ, "DATABASE_URL": url})
    assert migrated.returncode == 0, migrated.stderr.decode()[-3000:]
    return url


def drop_database(cfg: Settings, name: str) -> None:
    pg_cluster.psql(cfg, pg_layout.layout(cfg), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')


@dataclass
class RulesProcess:
    """One `python -m services.safety_rules` instance."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"{self.name} exited during startup:\n{self.log()[-3000:]}"
            try:
                if httpx.get(self.url("/healthz"), timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"{self.name} not healthy after {STARTUP_SECONDS:.0f}s:\n{self.log()[-3000:]}")

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = httpx.get(self.url("/metrics"), timeout=5.0).text
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


@dataclass
class LiveRules:
    """An isolated safety_rules deployment: database, topics, group, and its service processes."""

    cfg: Settings
    database_url: str
    prefix: str
    log_dir: Path
    group: str = field(default_factory=lambda: f"it-rules-{uuid.uuid4().hex[:8]}")
    processes: list[RulesProcess] = field(default_factory=list)

    @property
    def topics(self) -> RulesTopics:
        return RulesTopics.with_prefix(self.prefix)

    @property
    def kafka(self) -> KafkaSettings:
        return KafkaSettings.from_mapping(self.cfg.env)

    def tool_env(self) -> dict[str, str]:
        env = {**os.environ, "DATABASE_URL": self.database_url, "TRIALWATCH_STACK": "test"}
        env["TRIALWATCH_ENV_FILE"] = str(envfile.env_path("test"))
        env.pop("TRIALWATCH_STUDY", None)
        return env

    def start(self) -> RulesProcess:
        name, port = f"rules-{len(self.processes) + 1}", free_port()
        env = {**self.tool_env(), **SERVICE_SETTINGS, "TRIALWATCH_RULES_PORT": str(port)}
        env |= {"TRIALWATCH_RULES_TOPIC_PREFIX": self.prefix, "TRIALWATCH_RULES_CONSUMER_GROUP": self.group}
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as log:
            argv = [sys.executable, "-m", "services.safety_rules"]
            process = subprocess.Popen(argv, env=env, cwd=REPO_ROOT, stdout=log, stderr=log)
        started = RulesProcess(name, port, process, log_path)
        self.processes.append(started)
        started.wait_healthy()
        return started

    def logs(self) -> str:
        return "".join(f"\n--- {p.name} log (tail)\n{p.log()[-2500:]}" for p in self.processes)

    def signals_cli(self, *args: str) -> list[bytes]:
        done = run_tool([sys.executable, "-m", "trialwatch.cli", "signals", *args], self.tool_env())
        assert done.returncode == 0 and not done.stderr, done.stderr.decode()
        return done.stdout.splitlines()

    def replay_cli(self, paths: Sequence[Path]) -> list[bytes]:
        done = run_tool([sys.executable, "-m", "trialwatch.cli", "replay", *map(str, paths)], self.tool_env())
        assert done.returncode in (0, 65), done.stderr.decode()
        return done.stdout.splitlines()

    async def publish(self, values: Sequence[bytes], key: bytes = b"ANAKINRA-AD") -> list[int]:
        """Sends to the events topic with the idempotent producer; returns the offsets."""
        producer = AIOKafkaProducer(enable_idempotence=True, **aiokafka_options(self.kafka))
        await producer.start()
        try:
            sent = [await producer.send_and_wait(self.topics.events, value, key=key) for value in values]
        finally:
            await producer.stop()
        return [metadata.offset for metadata in sent]

    async def trickle(self, values: Sequence[bytes], stop: asyncio.Event, per_second: float) -> int:
        """Sends ``values`` one at a time, ``per_second``, until ``stop`` is set; returns how many it sent.

        A stream that lasts as long as the test needs, however fast the service consumes it."""
        producer = AIOKafkaProducer(enable_idempotence=True, **aiokafka_options(self.kafka))
        await producer.start()
        sent = 0
        try:
            for value in values:
                if stop.is_set():
                    break
                await producer.send_and_wait(self.topics.events, value, key=b"ANAKINRA-AD")
                sent += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=1 / per_second)
        finally:
            await producer.stop()
        return sent

    async def read_topic(self, topic: str, partition_count: int) -> list[ConsumerRecord[bytes, bytes]]:
        """Everything on ``topic`` now, read without a consumer group."""
        return await read_topic(self.kafka, topic, partition_count)

    async def eventually(self, probe: Callable[[], Awaitable[bool]], what: str, seconds: float = 90.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if await probe():
                return
            await asyncio.sleep(0.1)
        raise AssertionError(f"not within {seconds:.0f}s: {what}{self.logs()}")


async def read_topic(kafka: KafkaSettings, topic: str, partition_count: int) -> list[ConsumerRecord[bytes, bytes]]:
    """Everything on ``topic`` now, read without a consumer group."""
    consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **aiokafka_options(kafka))
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, n) for n in range(partition_count)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[ConsumerRecord[bytes, bytes]] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batches = await consumer.getmany(timeout_ms=500)
            found += [record for records in batches.values() for record in records]
        return found
    finally:
        await consumer.stop()
