"""End to end on the real test stack: ingest, safety_rules and notifier run as real subprocesses.

They read the test stack's env file (TRIALWATCH_ENV_FILE), exactly as `python -m services.<name>`
does for an operator. One lab record in (NDJSON over HTTP) gives one RecordIngested on
trialwatch.events.v1 and one signal, consumed once by the notifier; a redelivered record message and
a re-posted record change nothing; poison goes to the dead-letter topic without blocking the
partition; SIGTERM stops every service cleanly.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from rich.console import Console
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.messaging.broker import aiokafka_options
from shared.messaging.topic_watch import Found, TopicWatch
from shared.messaging.topics import DEAD_LETTER, EVENTS, SIGNALS
from shared.settings import KafkaSettings
from trialwatch.devstack import envfile, procs
from trialwatch.devstack.paths import ALEMBIC_INI, REPO_ROOT
from trialwatch.devstack.settings import Settings
from trialwatch.smoke import evidence_key, run_smoke, smoke_record

pytestmark = pytest.mark.integration

PORT_VARIABLES = {
    "ingest": "TRIALWATCH_INGEST_PORT",
    "safety_rules": "TRIALWATCH_RULES_PORT",
    "notifier": "TRIALWATCH_NOTIFIER_PORT",
}
STARTUP_SECONDS = 60.0
ARRIVAL_SECONDS = 60.0
STOP_SECONDS = 30.0


class ServiceProcesses:
    """The three services as `python -m services.<name>` subprocesses on the test stack's env file."""

    def __init__(self, cfg: Settings, log_dir: Path) -> None:
        self.cfg = cfg
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def url(self, name: str, path: str) -> str:
        return f"http://127.0.0.1:{self.cfg.env[PORT_VARIABLES[name]]}{path}"

    def health_urls(self) -> list[str]:
        return [self.url(name, "/healthz") for name in PORT_VARIABLES]

    def start(self) -> None:
        env = {**os.environ, "TRIALWATCH_ENV_FILE": str(envfile.env_path("test")), "PYTHONUNBUFFERED": "1"}
        for name, variable in PORT_VARIABLES.items():
            port = int(self.cfg.env[variable])
            if procs.port_open("127.0.0.1", port):
                pytest.fail(f"port {port} ({variable}) is taken: stop what runs there first", pytrace=False)
            with (self.log_dir / f"{name}.log").open("wb") as log:
                argv = [sys.executable, "-m", f"services.{name}"]
                self.processes[name] = subprocess.Popen(argv, env=env, cwd=REPO_ROOT, stdout=log, stderr=log)
        for name in PORT_VARIABLES:
            self._wait_healthy(name)

    def _wait_healthy(self, name: str) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                pytest.fail(f"{name} exited during startup:\n{self.log(name)[-3000:]}", pytrace=False)
            try:
                if httpx.get(self.url(name, "/healthz"), timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail(f"{name} not healthy after {STARTUP_SECONDS:.0f}s:\n{self.log(name)[-3000:]}", pytrace=False)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> dict[str, int]:
        """Signals every service still running, waits, kills stragglers; returns the exit codes."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(sig)
        codes: dict[str, int] = {}
        for name, process in self.processes.items():
            try:
                codes[name] = process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = process.wait()
        return codes

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def logs(self) -> str:
        return "".join(f"\n--- {name} log (tail)\n{self.log(name)[-2500:]}" for name in self.processes)


def migrate(database_url: str) -> None:
    argv = [sys.executable, "-m", "alembic", "-c", str(ALEMBIC_INI), "upgrade", "head"]
    env = {**os.environ, "DATABASE_URL": database_url}
    proc = subprocess.run(argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]


def fresh_record() -> dict[str, Any]:
    return smoke_record(datetime.now(UTC))


def as_ndjson(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record) + b"\n"


def published_records(seen: list[Found], record: dict[str, Any]) -> list[Found]:
    """The RecordIngested messages on trialwatch.events.v1 carrying ``record``."""
    source = evidence_key(record)
    return [
        found
        for found in seen
        if found.topic == EVENTS and orjson.loads(found.value)["dedup_key"].startswith(source + ":")
    ]


SIGNAL_ROWS = "SELECT count(*) FROM safety_rules.signal WHERE CAST(payload AS jsonb) -> 'evidence' ? :source"
ALERT_ROWS = "SELECT count(*) FROM notifier.alert WHERE CAST(payload AS jsonb) -> 'evidence' ? :source"


async def post_record(cfg: Settings, body: bytes) -> httpx.Response:
    url = f"http://127.0.0.1:{cfg.env['TRIALWATCH_INGEST_PORT']}/v1/records"
    headers = {"Authorization": f"Bearer {cfg.env['TRIALWATCH_TOKEN']}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(timeout=10.0) as client:
        return await client.post(url, content=body, headers=headers)


async def count(engine: AsyncEngine, sql: str, **params: str) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text(sql), params)).scalar_one())


async def eventually(probe: Callable[[], Awaitable[int]], services: ServiceProcesses) -> None:
    """Waits until ``probe`` counts at least one; fails with the service logs after ARRIVAL_SECONDS."""
    deadline = time.monotonic() + ARRIVAL_SECONDS
    while time.monotonic() < deadline:
        if await probe() >= 1:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"not within {ARRIVAL_SECONDS:.0f}s{services.logs()}", pytrace=False)


@pytest.fixture(scope="module")
def services(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcesses]:
    migrate(stack_settings.database_url)
    processes = ServiceProcesses(stack_settings, tmp_path_factory.mktemp("service-logs"))
    processes.start()
    try:
        yield processes
    finally:
        processes.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def db(stack_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(stack_settings.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def kafka(stack_settings: Settings) -> KafkaSettings:
    return KafkaSettings.from_mapping(stack_settings.env)


def test_demo_smoke_follows_one_record_to_the_notifier(services: ServiceProcesses, stack_settings: Settings) -> None:
    output = io.StringIO()
    exit_code = run_smoke(stack_settings.env, console=Console(file=output, width=120))
    assert exit_code == 0, output.getvalue() + services.logs()
    assert "5. consumed by notifier" in output.getvalue()


async def test_one_record_in_gives_one_signal_consumed_exactly_once(
    services: ServiceProcesses, stack_settings: Settings, db: AsyncEngine, kafka: KafkaSettings
) -> None:
    record = fresh_record()
    source = evidence_key(record)
    async with TopicWatch(kafka, (EVENTS, SIGNALS)) as watch:
        for _ in range(2):  # the second POST of the same record is a duplicate, accepted and ignored
            response = await post_record(stack_settings, as_ndjson(record))
            assert response.status_code == 202, response.text
        await eventually(lambda: count(db, ALERT_ROWS, source=source), services)
        seen = await watch.drain(settle=2.0)
    published = published_records(seen, record)
    assert len(published) == 1, "two POSTs of one record must publish one RecordIngested"
    record_id = orjson.loads(published[0].value)["record_id"]
    signals = [f for f in seen if f.topic == SIGNALS and source in orjson.loads(f.value)["evidence"]]
    assert len(signals) == 1
    signal_id = orjson.loads(signals[0].value)["signal_id"]
    assert await count(db, "SELECT count(*) FROM ingest.outbox WHERE event_id = :id", id=record_id) == 1
    processed = "SELECT count(*) FROM safety_rules.processed_event WHERE event_id = :id"
    assert await count(db, processed, id=record_id) == 1
    assert await count(db, "SELECT count(*) FROM notifier.processed_event WHERE event_id = :id", id=signal_id) == 1
    assert await count(db, "SELECT count(*) FROM notifier.alert WHERE signal_id = :id", id=signal_id) == 1
    audit = "SELECT count(*) FROM notifier.audit_log WHERE detail->>'signal_id' = :id"
    assert await count(db, audit, id=signal_id) == 1


async def committed_offset(admin: AIOKafkaAdminClient, group: str, topic: str, partition: int) -> int:
    offsets = await admin.list_consumer_group_offsets(group)
    return next((meta.offset for tp, meta in offsets.items() if (tp.topic, tp.partition) == (topic, partition)), -1)


async def test_a_redelivered_record_raises_no_second_signal(
    services: ServiceProcesses,
    stack_settings: Settings,
    db: AsyncEngine,
    kafka: KafkaSettings,
    kafka_admin_client: AIOKafkaAdminClient,
) -> None:
    record = fresh_record()
    source = evidence_key(record)
    async with TopicWatch(kafka, (EVENTS, SIGNALS)) as watch:
        assert (await post_record(stack_settings, as_ndjson(record))).status_code == 202
        await eventually(lambda: count(db, ALERT_ROWS, source=source), services)
        [original] = published_records(await watch.drain(settle=0.5), record)
        producer = AIOKafkaProducer(enable_idempotence=True, **aiokafka_options(kafka))
        await producer.start()
        try:  # the same message again, as after a relay crash between publish and commit
            headers = [(name, value.encode()) for name, value in original.headers.items()]
            again = await producer.send_and_wait(EVENTS, original.value, key=original.key, headers=headers)
        finally:
            await producer.stop()

        async def redelivery_acknowledged() -> int:
            committed = await committed_offset(kafka_admin_client, "safety-rules", EVENTS, again.partition)
            return int(committed > again.offset)

        await eventually(redelivery_acknowledged, services)
        seen = await watch.drain(settle=2.0)
    assert len([f for f in seen if f.topic == SIGNALS and source in orjson.loads(f.value)["evidence"]]) == 1
    assert await count(db, SIGNAL_ROWS, source=source) == 1
    processed = "SELECT count(*) FROM safety_rules.processed_event WHERE event_id = :id"
    assert await count(db, processed, id=orjson.loads(original.value)["record_id"]) == 1


async def test_poison_goes_to_the_dead_letter_topic_and_the_partition_keeps_flowing(
    services: ServiceProcesses, stack_settings: Settings, kafka: KafkaSettings
) -> None:
    record = fresh_record()
    source = evidence_key(record)
    producer = AIOKafkaProducer(enable_idempotence=True, **aiokafka_options(kafka))
    await producer.start()
    async with TopicWatch(kafka, (DEAD_LETTER, SIGNALS)) as watch:
        try:  # keyed by the study like ingest's records: the good record waits behind the poison
            poison = await producer.send_and_wait(EVENTS, b"{not json", key=str(record["STUDYID"]).encode())
        finally:
            await producer.stop()
        assert (await post_record(stack_settings, as_ndjson(record))).status_code == 202
        await eventually(lambda: _signal_seen(watch, source), services)
    dead = [  # every consumer of the topic dead-letters it once (the notifier reads it too)
        f
        for f in watch.seen
        if f.topic == DEAD_LETTER and f.value == b"{not json" and f.headers["x-consumer-group"] == "safety-rules"
    ]
    assert len(dead) == 1, services.logs()
    assert dead[0].headers["x-original-topic"] == EVENTS
    assert dead[0].headers["x-original-partition"] == str(poison.partition)
    assert dead[0].headers["x-original-offset"] == str(poison.offset)
    assert dead[0].headers["x-attempts"] == "1"
    assert "ValidationError" in dead[0].headers["x-reason"]


async def _signal_seen(watch: TopicWatch, source: str) -> int:
    await watch.poll()
    return sum(1 for f in watch.seen if f.topic == SIGNALS and source in orjson.loads(f.value)["evidence"])


async def test_health_and_metrics_are_open_and_the_ingest_api_needs_the_token(
    services: ServiceProcesses, stack_settings: Settings, db: AsyncEngine
) -> None:
    async with httpx.AsyncClient(timeout=5.0) as client:
        for url in services.health_urls():
            health = await client.get(url)
            assert health.status_code == 200 and health.json()["status"] == "ok", health.text
        metrics = await client.get(services.url("safety_rules", "/metrics"))
        assert "faststream_received_messages_total" in metrics.text
        anonymous = await client.post(services.url("ingest", "/v1/records"), content=b"{}")
        assert anonymous.status_code == 401
    before = await count(db, "SELECT count(*) FROM ingest.quarantine")
    rejected = await post_record(stack_settings, b'{"kind": "lab.result"}')
    assert rejected.status_code == 422
    assert rejected.headers["content-type"] == "application/problem+json"
    assert "DOMAIN" in rejected.json()["rejected"][0]["error"]
    assert await count(db, "SELECT count(*) FROM ingest.quarantine") == before + 1


def test_every_service_stops_cleanly_on_sigterm(services: ServiceProcesses) -> None:
    """uvicorn drains, runs the shutdown (relay, consumers, pool), then re-raises SIGTERM: 0 or -15."""
    exit_codes = services.stop(signal.SIGTERM)
    assert set(exit_codes.values()) <= {0, -signal.SIGTERM}, f"{exit_codes}{services.logs()}"
    for name in exit_codes:
        log = services.log(name)
        assert '"service.stopped"' in log and "Application shutdown complete" in log, log[-2000:]
