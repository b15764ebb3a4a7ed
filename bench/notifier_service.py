"""CPU of the notifier alone, on the test stack: per signal, and idle (issue #4's throughput, issue #5's service).

    python -m bench.notifier_service [--records 20000] [--idle 30] [--data out/bench-notifier-data]

The signals are those `trialwatch replay` raises on bench.generate's stream (seed 3, the pipeline
benchmark's stream for the default 20,000 records: 639 signals, URGENT 387, NOTIFY 249, HALT 3), or all
of them re-labelled with ``--severity`` (INFO: stored only, nothing sent). An
isolated deployment, like bench.rules_service: a new database migrated to head, topics with a unique
prefix, unique consumer groups, one `python -m services.notifier` subprocess and an SMTP sink
(`python -m services.smtp_sink`) on ports of its own; all of it removed afterwards.

1. **idle**: the notifier started, nothing published, for ``--idle`` seconds: its CPU per minute;
2. **signals**: every signal published at once; the clock runs until each has its alert and no delivery
   is pending (digests wait for their timer: 30 min in the study's routing, so they are not counted);
3. **idle after**: ``--idle`` seconds more, with the alerts, deliveries and timers in the tables;
4. **events** (``--events N``): N ingested records (bench.rules_service's, as ingest publishes them,
   none a DSMB decision) on the events topic, which the notifier reads for DSMB decisions (its share of
   bench.pipeline's flood); the clock runs until its decisions group has committed all of them.
CPU seconds of the notifier, the sink and PostgreSQL (all of the stack's server processes) per phase.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.pipeline.feed import ensure_stream
from bench.pipeline.processes import Services, cpu_seconds, infrastructure_pids, rss_mb
from bench.rules_service import PARTITIONS, STUDY, create_database, ensure_data, ingested_records
from shared.messaging.broker import aiokafka_options
from shared.settings import KafkaSettings
from trialwatch.devstack import kafka_admin, pg_cluster, pg_layout
from trialwatch.devstack.paths import REPO_ROOT
from trialwatch.devstack.settings import Settings, load_settings

SEED = 3
TOPICS = ("trialwatch.signals.v1", "trialwatch.events.v1", "trialwatch.alerts.v1", "trialwatch.in.records.v1")
DLQ = "trialwatch.dlq.v1"
PROGRESS = """
SELECT (SELECT count(*) FROM notifier.alert),
       (SELECT count(*) FROM notifier.delivery WHERE status = 'PENDING'),
       (SELECT count(*) FROM notifier.delivery),
       (SELECT count(*) FROM notifier.audit_log)
"""


def replayed_signals(records: int, data: Path) -> list[bytes]:
    """The signals `trialwatch replay` raises on the generated stream, one JSON document each."""
    files = ensure_stream(data, records, SEED)
    replay = Path(sys.executable).with_name("trialwatch")
    done = subprocess.run([str(replay), "replay", *map(str, files)], capture_output=True, check=False, cwd=REPO_ROOT)
    if done.returncode not in (0, 1):  # 1: some records rejected, as generated
        raise RuntimeError(done.stderr.decode()[-3000:])
    return [line for line in done.stdout.splitlines() if line.strip()]


def with_severity(value: bytes, severity: str) -> bytes:
    """The signal as if its rule had ``severity`` (INFO: stored, never sent)."""
    return json.dumps(json.loads(value) | {"severity": severity}).encode()


class Notifier:
    """The notifier and an SMTP sink, as subprocesses on the isolated database, topics and ports."""

    def __init__(self, cfg: Settings, url: str, prefix: str, log_dir: Path) -> None:
        base = 20000 + (os.getpid() % 500) * 4
        self.port, smtp = base, base + 1
        env = {**Services(cfg, log_dir).env, "DATABASE_URL": url, "TRIALWATCH_NOTIFIER_PORT": str(self.port)}
        env |= {"TRIALWATCH_SMTP_PORT": str(smtp), "TRIALWATCH_SMTP_HEALTH_PORT": str(base + 2)}
        env |= {
            "TRIALWATCH_NOTIFIER_TOPIC_PREFIX": prefix,
            "TRIALWATCH_NOTIFIER_CONSUMER_GROUP": f"bench-{prefix}signals",
            "TRIALWATCH_NOTIFIER_DECISIONS_GROUP": f"bench-{prefix}decisions",
        }
        self.health = {"notifier": self.port, "smtp_sink": base + 2}
        log_dir.mkdir(parents=True, exist_ok=True)
        self.processes = {name: self._start(name, env, log_dir) for name in ("smtp_sink", "notifier")}

    @staticmethod
    def _start(name: str, env: dict[str, str], log_dir: Path) -> subprocess.Popen[bytes]:
        with (log_dir / f"bench-notifier-{name}.log").open("wb") as out:
            argv = [sys.executable, "-m", f"services.{name}"]
            return subprocess.Popen(argv, env=env, cwd=REPO_ROOT, stdout=out, stderr=out)

    async def wait_healthy(self) -> None:
        async with httpx.AsyncClient() as client:
            for name, port in self.health.items():
                for _ in range(600):
                    if self.processes[name].poll() is not None:
                        raise RuntimeError(f"{name} exited during startup")
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                            break
                    await asyncio.sleep(0.2)
                else:
                    raise RuntimeError(f"{name} not healthy")

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"{name} died; see its log")

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            process.wait(30)


def cpu_snapshot(cfg: Settings, notifier: Notifier) -> dict[str, float]:
    used = {name: cpu_seconds(process.pid) for name, process in notifier.processes.items()}
    postgres = infrastructure_pids(cfg).get("postgres", [])
    return used | {"postgres": sum(cpu_seconds(pid) for pid in postgres)}


def cpu_between(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {name: round(after[name] - before.get(name, 0.0), 2) for name in after}


async def publish(kafka: KafkaSettings, topic: str, signals: Sequence[bytes]) -> None:
    producer = AIOKafkaProducer(enable_idempotence=True, linger_ms=5, **aiokafka_options(kafka))
    await producer.start()
    try:
        sent = [await producer.send(topic, value, key=STUDY.encode()) for value in signals]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def publish_records(kafka: KafkaSettings, topic: str, records: Sequence[tuple[str, bytes]]) -> None:
    """As ingest's relay publishes them: keyed by study, with the relay's headers."""
    producer = AIOKafkaProducer(enable_idempotence=True, linger_ms=5, **aiokafka_options(kafka))
    await producer.start()
    try:
        sent = []
        for record_id, value in records:
            headers = [
                ("content-type", b"application/json"),
                ("event_id", record_id.encode()),
                ("kind", b"record.ingested"),
                ("schema_version", b"1"),
                ("channel", b"file"),
            ]
            sent.append(await producer.send(topic, value, key=STUDY.encode(), headers=headers))
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def committed_all(kafka: KafkaSettings, topic: str, group: str) -> bool:
    consumer = AIOKafkaConsumer(group_id=group, enable_auto_commit=False, **aiokafka_options(kafka))
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, n) for n in sorted(consumer.partitions_for_topic(topic) or {0})]
        ends = await consumer.end_offsets(partitions)
        committed = [await consumer.committed(tp) or 0 for tp in partitions]
        return all(offset >= ends[tp] for offset, tp in zip(committed, partitions, strict=True))
    finally:
        await consumer.stop()


async def events(cfg: Settings, notifier: Notifier, topic: str, group: str, count: int) -> dict[str, Any]:
    """The notifier's CPU to read ``count`` ingested records (none a DSMB decision) off the events topic."""
    kafka = KafkaSettings.from_mapping(cfg.env)
    records = ingested_records(ensure_data(Path("out/bench-data"), count), count)
    values = [(record.record_id, record.model_dump_json().encode()) for record in records]
    before, started = cpu_snapshot(cfg, notifier), time.monotonic()
    await publish_records(kafka, topic, values)
    while not await committed_all(kafka, topic, group):
        notifier.check_alive()
        await asyncio.sleep(0.25)
    seconds, cpu = time.monotonic() - started, cpu_between(before, cpu_snapshot(cfg, notifier))
    return {
        "records": len(values),
        "mean_bytes": round(sum(len(value) for _, value in values) / max(1, len(values))),
        "seconds": round(seconds, 2),
        "cpu_seconds": cpu,
        "notifier_cpu_us_per_record": round(1e6 * cpu["notifier"] / max(1, len(values)), 1),
    }


async def progress(db: AsyncEngine) -> tuple[int, int, int, int]:
    async with db.connect() as connection:
        alerts, pending, deliveries, audit = (await connection.execute(text(PROGRESS))).one()
    return int(alerts), int(pending), int(deliveries), int(audit)


async def idle(cfg: Settings, notifier: Notifier, seconds: float) -> dict[str, float]:
    before = cpu_snapshot(cfg, notifier)
    await asyncio.sleep(seconds)
    notifier.check_alive()
    used = cpu_between(before, cpu_snapshot(cfg, notifier))
    return {name: round(seconds_used * 60 / seconds, 2) for name, seconds_used in used.items()}


async def measure(
    cfg: Settings, notifier: Notifier, db: AsyncEngine, topic: str, signals: list[bytes]
) -> dict[str, Any]:
    before, started = cpu_snapshot(cfg, notifier), time.monotonic()
    await publish(KafkaSettings.from_mapping(cfg.env), topic, signals)
    distinct = len({json.loads(value)["signal_id"] for value in signals})
    while True:
        alerts, pending, deliveries, audit = await progress(db)
        if alerts >= distinct and pending == 0:
            break
        notifier.check_alive()
        await asyncio.sleep(0.05)
    seconds, cpu = time.monotonic() - started, cpu_between(before, cpu_snapshot(cfg, notifier))
    return {
        "signals": distinct,
        "deliveries": deliveries,
        "audit_entries": audit,
        "seconds": round(seconds, 2),
        "cpu_seconds": cpu,
        "notifier_cpu_ms_per_signal": round(1000 * cpu["notifier"] / distinct, 2),
        "notifier_cpu_s_per_1000_signals": round(1000 * cpu["notifier"] / distinct, 2),
        "postgres_cpu_ms_per_signal": round(1000 * cpu["postgres"] / distinct, 2),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = load_settings("test", create=False)
    signals = replayed_signals(args.records, args.data)[: args.signals or None]
    if args.severity:
        signals = [with_severity(value, args.severity) for value in signals]
    severities = collections.Counter(json.loads(value)["severity"] for value in signals)
    prefix, name = f"bench.{uuid.uuid4().hex[:8]}.", f"bench_notifier_{uuid.uuid4().hex[:10]}"
    topics = [prefix + base for base in (*TOPICS, DLQ)]
    admin = kafka_admin.admin_client(cfg.bootstrap, timeout_ms=30_000)
    await admin.start()
    await admin.create_topics([NewTopic(t, PARTITIONS.get(t.removeprefix(prefix), 1), 1) for t in topics])
    url = await asyncio.to_thread(create_database, cfg, name)
    db = create_async_engine(url)
    notifier = Notifier(cfg, url, prefix, Path(args.log_dir))
    try:
        await notifier.wait_healthy()
        result: dict[str, Any] = {"severities": dict(sorted(severities.items())), "load_average_start": os.getloadavg()}
        result["idle_cpu_s_per_min"] = await idle(cfg, notifier, args.idle)
        result |= await measure(cfg, notifier, db, topics[0], signals)
        result["idle_after_cpu_s_per_min"] = await idle(cfg, notifier, args.idle)
        if args.events:
            group = f"bench-{prefix}decisions"
            result["events"] = await events(cfg, notifier, topics[1], group, args.events)
        result["peak_rss_mb"] = round(rss_mb(notifier.processes["notifier"].pid)[1], 1)
        result["load_average_end"] = os.getloadavg()
        return result
    finally:
        notifier.stop()
        await db.dispose()
        await admin.delete_topics(topics)
        await admin.close()
        pg_cluster.psql(cfg, pg_layout.layout(cfg), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.notifier_service", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000, help="records of the generated stream")
    parser.add_argument("--signals", type=int, default=0, help="publish only the first N signals (0: all)")
    parser.add_argument("--severity", help="publish every signal with this severity (INFO: stored only)")
    parser.add_argument("--events", type=int, default=0, help="then N ingested records on the events topic")
    parser.add_argument("--idle", type=float, default=30.0, help="seconds of each idle measurement")
    parser.add_argument("--data", type=Path, default=Path("out/bench-notifier-data"))
    parser.add_argument("--log-dir", default="out")
    parser.add_argument("--out", type=Path, default=Path("out/bench-notifier.json"))
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for key, value in result.items():
        print(f"{key:>34}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
