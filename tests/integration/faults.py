"""The live pipeline under test and the faults done to it (issue #4): processes, probes, faults, oracle.

- `Pipeline`: ingest, safety_rules and notifier as real `python -m services.<name>` subprocesses on the
  test stack's env file, each of which can be stopped, killed with SIGKILL and started again.
- `Probe`: what the database and the broker say about work in flight: unpublished outbox rows per
  service, consumer lag per group (end offset − committed offset), processed records, quarantine.
- faults: SIGKILL a service, restart the broker on the same data dir, stop PostgreSQL for a while,
  produce poison bytes. Each fault returns what was in flight when it struck.
- the oracle: `trialwatch replay` of the same files in the same order, compared with `trialwatch
  signals` signal by signal (CLOCK-BREACH aside: live, its timing is the wall clock's).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.errors import KafkaError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.ingest.app import CONSUMER_GROUP as INGEST_GROUP
from services.notifier.settings import DEFAULT_CONSUMER_GROUP as NOTIFIER_GROUP
from services.notifier.settings import DEFAULT_DECISIONS_GROUP as NOTIFIER_DECISIONS_GROUP
from services.safety_rules.settings import DEFAULT_CONSUMER_GROUP as RULES_GROUP
from shared.messaging.broker import aiokafka_options
from shared.messaging.topics import ALL_TOPICS
from shared.settings import KafkaSettings
from trialwatch import devstack
from trialwatch.devstack import envfile, kafka, pg_layout, procs
from trialwatch.devstack.paths import ALEMBIC_INI, REPO_ROOT
from trialwatch.devstack.settings import Settings

SERVICE_PORTS = {
    "ingest": "TRIALWATCH_INGEST_PORT",
    "safety_rules": "TRIALWATCH_RULES_PORT",
    "notifier": "TRIALWATCH_NOTIFIER_PORT",
}
SCHEMAS = ("ingest", "safety_rules", "notifier")
#: The services' consumer groups: the only ones whose lag is work in flight (other tests leave groups of
#: their own on the same topics, with a lag nobody will ever consume).
SERVICE_GROUPS = (INGEST_GROUP, RULES_GROUP, NOTIFIER_GROUP, NOTIFIER_DECISIONS_GROUP)
STARTUP_SECONDS = 90.0
STOP_SECONDS = 30.0
CLI_SECONDS = 600.0
BREACH = "CLOCK-BREACH"
PROBE_ATTEMPTS = 40
LAG_UNKNOWN = -1  # the group has no committed offsets any more (e.g. its coordinator lost them)
# The most a freeze waits for the moment it is meant to catch. It returns as soon as that moment comes; the
# bound only has to outlast a restarted service's start and its producer's recovery from a frozen broker
# (under a load of 5-8 a relay's first round after the broker's thaw took longer than 5 s).
FREEZE_SECONDS = 30.0
PROBE_INTERVAL = 0.25
POLL_SECONDS = 0.05


class PipelineError(AssertionError):
    """The pipeline did not do what the test needs (with the service logs attached)."""


class Pipeline:
    """The three services as subprocesses; logs append across restarts, one file per service."""

    def __init__(self, cfg: Settings, log_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.cfg = cfg
        self.log_dir = log_dir
        self.env = {
            **os.environ,
            envfile.ENV_FILE_VAR: str(envfile.env_path(cfg.stack)),
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def url(self, name: str, path: str) -> str:
        return f"http://127.0.0.1:{self.cfg.env[SERVICE_PORTS[name]]}{path}"

    def migrate(self) -> None:
        """`alembic upgrade head` on the stack's database (the services expect the latest schema)."""
        argv = [sys.executable, "-m", "alembic", "-c", str(ALEMBIC_INI), "upgrade", "head"]
        result = subprocess.run(argv, env=self.env, cwd=REPO_ROOT, capture_output=True, timeout=120, check=False)
        if result.returncode != 0:
            raise PipelineError(f"migrations failed: {result.stderr.decode()[-3000:]}")

    def start(self, *names: str) -> None:
        """Starts the services (all by default) and waits until each is healthy."""
        self.spawn(*names)
        for name in names or tuple(SERVICE_PORTS):
            self.wait_healthy(name)

    def spawn(self, *names: str) -> None:
        """Starts the services that are not running, without waiting for them (see `wait_healthy`)."""
        for name in names or tuple(SERVICE_PORTS):
            if self.alive(name):
                continue
            port = int(self.cfg.env[SERVICE_PORTS[name]])
            if procs.port_open("127.0.0.1", port):
                raise PipelineError(f"port {port} of {name} is taken: stop what runs there first")
            with (self.log_dir / f"{name}.log").open("ab") as log:
                argv = [sys.executable, "-m", f"services.{name}"]
                self.processes[name] = subprocess.Popen(argv, env=self.env, cwd=REPO_ROOT, stdout=log, stderr=log)

    def wait_healthy(self, name: str) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise PipelineError(f"{name} exited during startup:\n{self.log(name)[-3000:]}")
            try:
                if httpx.get(self.url(name, "/healthz"), timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise PipelineError(f"{name} not healthy after {STARTUP_SECONDS:.0f}s:\n{self.log(name)[-3000:]}")

    def alive(self, name: str) -> bool:
        process = self.processes.get(name)
        return process is not None and process.poll() is None

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def stop(self, *names: str, sig: signal.Signals = signal.SIGTERM) -> dict[str, int]:
        """Signals the services (all by default), waits for them, kills stragglers; returns exit codes."""
        chosen = [name for name in (names or tuple(self.processes)) if name in self.processes]
        for name in chosen:
            if self.alive(name):
                self.processes[name].send_signal(sig)
        codes: dict[str, int] = {}
        for name in chosen:
            try:
                codes[name] = self.processes[name].wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.processes[name].kill()
                codes[name] = self.processes[name].wait()
        return codes

    def freeze(self, name: str) -> None:
        """SIGSTOP: the service holds still (its consumer takes nothing more) until `thaw`."""
        os.kill(self.pid(name), signal.SIGSTOP)

    def thaw(self, name: str) -> None:
        """SIGCONT (harmless when the service is not frozen)."""
        if self.alive(name):
            os.kill(self.pid(name), signal.SIGCONT)

    def kill(self, name: str) -> int:
        """SIGKILL: no shutdown hook runs, nothing is flushed or committed."""
        return self.stop(name, sig=signal.SIGKILL)[name]

    def metrics(self, name: str) -> str:
        return httpx.get(self.url(name, "/metrics"), timeout=5.0).text

    def log(self, name: str, since: int = 0) -> str:
        """The service's log (from byte ``since``: see `log_marks`)."""
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        with path.open("rb") as log:
            log.seek(since)
            return log.read().decode(errors="replace")

    def log_marks(self) -> dict[str, int]:
        """Where each service's log ends now, so that a test reads only its own lines."""
        return {name: (self.log_dir / f"{name}.log").stat().st_size if (self.log_dir / f"{name}.log").exists()
                else 0 for name in SERVICE_PORTS}  # fmt: skip

    def logs(self, tail: int = 2500) -> str:
        return "".join(f"\n--- {name} log (tail)\n{self.log(name)[-tail:]}" for name in SERVICE_PORTS)

    def cli(self, *args: str, timeout: float = CLI_SECONDS) -> subprocess.CompletedProcess[bytes]:
        """`trialwatch ARGS` with the stack's env file and token, as an operator runs it."""
        env = {**self.env, "TRIALWATCH_TOKEN": self.cfg.env["TRIALWATCH_TOKEN"]}
        argv = [sys.executable, "-m", "trialwatch.cli", *args]
        return subprocess.run(argv, env=env, cwd=REPO_ROOT, capture_output=True, timeout=timeout, check=False)

    async def cli_background(self, *args: str) -> asyncio.subprocess.Process:
        env = {**self.env, "TRIALWATCH_TOKEN": self.cfg.env["TRIALWATCH_TOKEN"]}
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "trialwatch.cli", *args, env=env, cwd=REPO_ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip


@contextmanager
def migrated_pipeline(cfg: Settings, log_dir: Path) -> Iterator[Pipeline]:
    """A `Pipeline` on a migrated database, every service stopped when the block ends."""
    processes = Pipeline(cfg, log_dir)
    processes.migrate()
    try:
        yield processes
    finally:
        processes.stop()


@asynccontextmanager
async def opened_probe(cfg: Settings) -> AsyncIterator[Probe]:
    """A `Probe` on the stack's database and broker, its engine disposed when the block ends."""
    engine = create_async_engine(cfg.database_url, pool_pre_ping=True)
    try:
        yield Probe(engine, KafkaSettings.from_mapping(cfg.env))
    finally:
        await engine.dispose()


def metric_total(exposition: str, name: str, **labels: str) -> float:
    """Sum of a Prometheus sample family (``name`` and ``name_total``) over the matching labels."""
    total = 0.0
    pattern = re.compile(rf"^{re.escape(name)}(?:_total)?(\{{[^}}]*\}})?\s+([0-9.eE+-]+)$")
    for line in exposition.splitlines():
        match = pattern.match(line)
        if match and all(f'{key}="{value}"' in (match.group(1) or "") for key, value in labels.items()):
            total += float(match.group(2))
    return total


@dataclass(frozen=True)
class InFlight:
    """Work accepted but not yet finished, as the database and the broker see it."""

    outbox: dict[str, int]
    lag: dict[str, int]

    @property
    def total(self) -> int:
        """Records in flight; a group whose offsets are unknown counts as one."""
        return sum(self.outbox.values()) + sum(abs(lag) for lag in self.lag.values())

    def __str__(self) -> str:
        outbox = ", ".join(f"{schema}.outbox {count}" for schema, count in self.outbox.items())
        lag = ", ".join(f"{group} lag {count}" for group, count in self.lag.items())
        return f"{outbox}; {lag}"


class Probe:
    """Read-only views of the pipeline's progress, plus the reset to an empty pipeline."""

    def __init__(self, engine: AsyncEngine, kafka: KafkaSettings) -> None:
        self.engine = engine
        self.kafka = kafka
        self._options = aiokafka_options(kafka)
        self.groups: set[str] = set()  # service groups that had offsets on a TrialWatch topic
        #: each TrialWatch topic's end offsets at the last `reset`: where this run's records begin (an
        #: unclean broker stop can undo `delete_records`, bringing older records back into view)
        self.origin: dict[TopicPartition, int] = {}

    async def scalar(self, sql: str, **params: Any) -> int:
        async with self.engine.connect() as connection:
            return int((await connection.execute(text(sql), params)).scalar_one())

    async def string(self, sql: str, **params: Any) -> str:
        async with self.engine.connect() as connection:
            return str((await connection.execute(text(sql), params)).scalar_one())

    async def tables(self, name: str | None = None) -> list[tuple[str, str]]:
        sql = (
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema = ANY(:schemas) AND table_type = 'BASE TABLE'"
        )
        async with self.engine.connect() as connection:
            rows = (await connection.execute(text(sql), {"schemas": list(SCHEMAS)})).all()
        return sorted((schema, table) for schema, table in rows if name is None or table == name)

    async def pending_outbox(self) -> dict[str, int]:
        pending: dict[str, int] = {}
        for schema, table in await self.tables("outbox"):
            pending[schema] = await self.scalar(f'SELECT count(*) FROM "{schema}"."{table}" WHERE published_at IS NULL')
        return pending

    async def lag(self) -> dict[str, int]:
        """Per consumer group with offsets on a TrialWatch topic: end − max(committed, log start).
        Retried while the broker is still loading its groups (right after a restart)."""
        for attempt in range(PROBE_ATTEMPTS):
            try:
                return await self._lag()
            except KafkaError as error:
                if not error.retriable or attempt == PROBE_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.5)
        raise AssertionError("unreachable")

    async def _lag(self) -> dict[str, int]:
        admin = AIOKafkaAdminClient(**self._options)
        consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **self._options)
        await admin.start()
        await consumer.start()
        try:
            lags: dict[str, int] = dict.fromkeys(self.groups, LAG_UNKNOWN)  # a group seen before must answer
            listed = {group for group, _ in await admin.list_consumer_groups()}
            for group in sorted(listed.intersection(SERVICE_GROUPS)):
                committed = {
                    tp: meta.offset
                    for tp, meta in (await admin.list_consumer_group_offsets(group)).items()
                    if tp.topic in ALL_TOPICS
                }
                if committed:
                    lags[group] = await _group_lag(self._options, consumer, committed)
                    self.groups.add(group)
            return dict(sorted(lags.items()))
        finally:
            await consumer.stop()
            await admin.close()

    async def in_flight(self) -> InFlight:
        return InFlight(await self.pending_outbox(), await self.lag())

    async def drained(self, pipeline: Pipeline, limit: float, settle: int = 2) -> float:
        """Waits until no outbox row is pending and no group lags, ``settle`` probes in a row; returns
        the seconds waited. Fails with the service logs after ``limit`` seconds."""
        started = time.monotonic()
        quiet = 0
        while time.monotonic() - started < limit:
            flight = await self.in_flight()
            quiet = quiet + 1 if flight.total == 0 else 0
            if quiet >= settle:
                return time.monotonic() - started
            await asyncio.sleep(PROBE_INTERVAL)
        raise PipelineError(f"not drained after {limit:.0f}s: {await self.in_flight()}{pipeline.logs()}")

    async def reset(self) -> None:
        """An empty pipeline: every TrialWatch topic emptied (log start moved to its end, so groups and
        fresh consumers start there) and every service table truncated. Services must be stopped."""
        admin = AIOKafkaAdminClient(**self._options)
        consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **self._options)
        await admin.start()
        await consumer.start()
        try:
            partitions = await topic_partitions(self._options, ALL_TOPICS)
            ends = await consumer.end_offsets(partitions)
            await admin.delete_records({tp: RecordsToDelete(end) for tp, end in ends.items() if end > 0})
            self.origin = dict(ends)
        finally:
            await consumer.stop()
            await admin.close()
        names = ", ".join(f'"{schema}"."{table}"' for schema, table in await self.tables())
        async with self.engine.begin() as connection:
            await connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))

    async def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **self._options)
        await consumer.start()
        try:
            partitions = await topic_partitions(self._options, (topic,))
            return dict(await consumer.end_offsets(partitions))
        finally:
            await consumer.stop()

    async def read(self, topic: str, since: dict[TopicPartition, int] | None = None) -> list[Any]:
        """Every record of ``topic`` from the offsets ``since`` (by default: the last `reset`) to the
        current end."""
        since = self.origin if since is None else since
        ends = await self.end_offsets(topic)
        consumer = AIOKafkaConsumer(group_id=None, enable_auto_commit=False, **self._options)
        await consumer.start()
        records: list[Any] = []
        try:
            consumer.assign(list(ends))
            starts = await consumer.beginning_offsets(list(ends))
            for tp in ends:
                consumer.seek(tp, max(since.get(tp, 0), starts[tp]))
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                batch = await consumer.getmany(timeout_ms=500)
                records += [record for part in batch.values() for record in part]
        finally:
            await consumer.stop()
        return records


async def topic_partitions(options: dict[str, Any], topics: Iterable[str]) -> list[TopicPartition]:
    """Every partition of ``topics``, as the broker describes them."""
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topics))
    finally:
        await admin.close()
    return [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in sorted(topic["partitions"], key=lambda part: part["partition"])
    ]


async def _group_lag(options: dict[str, Any], consumer: AIOKafkaConsumer, committed: dict[TopicPartition, int]) -> int:
    partitions = await topic_partitions(options, sorted({tp.topic for tp in committed}))
    ends = await consumer.end_offsets(partitions)
    starts = await consumer.beginning_offsets(partitions)
    return sum(max(0, ends[tp] - max(committed.get(tp, -1), starts[tp])) for tp in partitions)


# --- faults ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    """What a fault struck: the work in flight just before it, and how long the outage lasted."""

    name: str
    in_flight: InFlight
    outage_seconds: float


async def kill_and_restart(pipeline: Pipeline, probe: Probe, name: str) -> Fault:
    """SIGKILL ``name`` mid-stream, then start it again (redeliveries after the last commit follow)."""
    flight = await probe.in_flight()
    started = time.monotonic()
    await asyncio.to_thread(pipeline.kill, name)
    await asyncio.to_thread(pipeline.start, name)
    return Fault(f"kill -9 {name}", flight, time.monotonic() - started)


def postgres_processes(stack: str) -> list[int]:
    """The stack's PostgreSQL postmaster and its children (backends, checkpointer, ...)."""
    cfg = devstack.load_settings(stack)
    if cfg.external_db:
        raise PipelineError("DATABASE_URL names an external database: it cannot be frozen here")
    postmaster = int((pg_layout.layout(cfg).data / "postmaster.pid").read_text().split()[0])
    children = [int(stat.parent.name) for stat in Path("/proc").glob("[0-9]*/stat") if _parent_of(stat) == postmaster]
    return [postmaster, *children]


@contextmanager
def broker_frozen(stack: str) -> Iterator[None]:
    """The stack's Kafka broker held still (SIGSTOP) inside the block, thawed after it whatever happens:
    producers' requests wait (well within their timeout) and their rows pile up in the outboxes."""
    cfg = devstack.load_settings(stack)
    pid = kafka.running(cfg)
    if pid is None:
        raise PipelineError("the stack's Kafka broker is not running")
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _parent_of(stat: Path) -> int | None:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


#: A relay round holding its claim (``FOR UPDATE SKIP LOCKED``, its transaction open) while it waits for the broker.
RELAY_HOLDING_CLAIM = (
    "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'"
    " AND query LIKE 'SELECT id, event_id, topic%' AND query LIKE '%' || :table || '%FOR UPDATE SKIP LOCKED%'"
)

CLAIMED_FIRST = "SELECT event_id FROM {table} WHERE published_at IS NULL ORDER BY id LIMIT 1"


async def kill_between_publish_and_mark(pipeline: Pipeline, probe: Probe, stack: str, name: str, topic: str) -> Fault:
    """SIGKILL ``name`` inside its relay's crash window, placed for certain: the broker is held still
    (SIGSTOP) until the relay's round has claimed its rows and waits for the broker's acknowledgement;
    then PostgreSQL is frozen and the broker let go, so the batch reaches Kafka (its first row is seen on
    ``topic``) but its
    "published" mark cannot commit; the service dies there, PostgreSQL is thawed, the service started again:
    its relay publishes the batch a second time, and the consumers must skip those records as duplicates."""
    flight = await probe.in_flight()
    started = time.monotonic()
    broker = kafka.running(devstack.load_settings(stack))
    if broker is None:
        raise PipelineError("the stack's Kafka broker is not running")
    os.kill(broker, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + FREEZE_SECONDS
        while not await probe.scalar(RELAY_HOLDING_CLAIM, table=f"{name}.outbox"):
            if time.monotonic() > deadline:
                raise PipelineError(f"{name}'s relay claimed nothing in {FREEZE_SECONDS:.0f}s: no round to catch")
            await asyncio.sleep(POLL_SECONDS)
        # The round's first row (a plain read is not blocked by its lock): the one to see on Kafka.
        claimed = await probe.string(CLAIMED_FIRST.format(table=f"{name}.outbox"))
        frozen = postgres_processes(stack)
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
    finally:
        os.kill(broker, signal.SIGCONT)
    try:
        deadline = time.monotonic() + FREEZE_SECONDS
        while claimed.encode() not in {
            dict(record.headers or ()).get("event_id") for record in await probe.read(topic)
        }:
            if time.monotonic() > deadline:
                raise PipelineError(f"{name}'s claimed row {claimed} reached no {topic} in {FREEZE_SECONDS:.0f}s")
            await asyncio.sleep(POLL_SECONDS)
        await asyncio.to_thread(pipeline.kill, name)
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    await asyncio.to_thread(pipeline.start, name)
    return Fault(f"kill -9 {name} between publish and mark", flight, time.monotonic() - started)


async def restart_broker(probe: Probe, stack: str, *, kill: bool) -> Fault:
    """Stop the Kafka broker (SIGKILL or SIGTERM) and start it again on the same data directory."""
    flight = await probe.in_flight()
    started = time.monotonic()
    await devstack.kafka_stop_async(stack, kill=kill)  # returns once the broker's ports are closed
    await devstack.kafka_start_async(stack)
    return Fault(f"broker {'SIGKILL' if kill else 'SIGTERM'} + restart", flight, time.monotonic() - started)


async def postgres_outage(
    probe: Probe, stack: str, seconds: float, *, stopped: Callable[[], None] | None = None
) -> Fault:
    """Stop PostgreSQL (fast shutdown: connections are cut) for ``seconds``, then start it again;
    ``stopped`` runs as soon as it is down (e.g. to let a frozen service meet the outage with work in hand)."""
    flight = await probe.in_flight()
    await probe.engine.dispose()
    started = time.monotonic()
    await devstack.pg_stop_async(stack)
    if stopped is not None:
        stopped()
    await asyncio.sleep(seconds)  # the outage itself: nothing to wait for
    await devstack.pg_start_async(stack, migrate=False)
    return Fault(f"PostgreSQL stopped {seconds:.0f}s", flight, time.monotonic() - started)


async def produce(kafka: KafkaSettings, topic: str, values: Iterable[bytes], key: bytes | None) -> list[Any]:
    """Produce raw bytes (poison included) with an idempotent producer; returns the record metadata."""
    producer = AIOKafkaProducer(enable_idempotence=True, **aiokafka_options(kafka))
    await producer.start()
    try:
        return [await producer.send_and_wait(topic, value, key=key) for value in values]
    finally:
        await producer.stop()


# --- the oracle ----------------------------------------------------------------------------------------


def ndjson(data: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in data.splitlines() if line.strip()]


def without_breaches(signals: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return [signal for signal in signals if signal["rule_id"] != BREACH]


def difference(live: Sequence[dict[str, Any]], replayed: Sequence[dict[str, Any]]) -> str:
    """Empty when both hold the same signals (as multisets, every field compared); else what differs."""
    canon = [orjson.dumps(s, option=orjson.OPT_SORT_KEYS) for s in live]
    expected = [orjson.dumps(s, option=orjson.OPT_SORT_KEYS) for s in replayed]
    missing = Counter(expected) - Counter(canon)
    extra = Counter(canon) - Counter(expected)
    if not missing and not extra:
        return ""
    lines = [f"live {len(live)} signals, replay {len(replayed)}"]
    lines += [f"  only in replay (x{n}): {s.decode()[:400]}" for s, n in list(missing.items())[:10]]
    lines += [f"  only live (x{n}): {s.decode()[:400]}" for s, n in list(extra.items())[:10]]
    return "\n".join(lines)


def replay(pipeline: Pipeline, files: Sequence[Path]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """`trialwatch replay` of the files in order: (signals, rejections)."""
    result = pipeline.cli("replay", *map(str, files))
    if result.returncode not in (0, 65):
        raise PipelineError(f"replay exited {result.returncode}: {result.stderr.decode()[-2000:]}")
    return ndjson(result.stdout), ndjson(result.stderr)


def live_signals(pipeline: Pipeline) -> list[dict[str, Any]]:
    result = pipeline.cli("signals")
    if result.returncode != 0:
        raise PipelineError(f"signals exited {result.returncode}: {result.stderr.decode()[-2000:]}")
    return ndjson(result.stdout)
