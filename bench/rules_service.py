"""Throughput of the safety_rules service alone, on the test stack (issue #4: >= 2,000 records/s, <= 200 MB).

    python -m bench.rules_service [--records 5000] [--rate 0] [--data out/bench-data]

An isolated deployment, like the live tests' rig: a new database migrated to head, topics with a unique
prefix, a unique consumer group and one `python -m services.safety_rules` subprocess; all of it is removed
afterwards, so it never touches another engineer's topics or tables. The records are the real parsers'
output for bench.generate's stream (records-000.ndjson and labs-000.hl7, 2 : 3 as generated), published
as RecordIngested to the events topic keyed by study. The clock runs from the first send until
processed_event holds every distinct record id. Reports records/s, the service's CPU time per record, its RSS (now
and peak), the latency histogram's p50/p99 (received_at -> commit; with --rate, a paced run) and the CPU time
PostgreSQL spent meanwhile (postmaster, its backends and workers, and those that ended: the stack serves only
this benchmark, so that is what the service's statements cost it, plus the benchmark's own polling and whatever
checkpoints and autovacuum happen to run) and, of that, the service's own backends (its connections); the
WAL the server wrote meanwhile (its range, for ``pg_waldump --stats``) and the rows each safety_rules table
took (inserted, updated, of which HOT, deleted). ``--keep-database`` leaves the database for inspection.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.admin import NewTopic
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.generate import generate
from bench.pipeline.processes import Services, children, cpu_seconds, rss_mb, wait_http_healthy
from services.ingest.domain import Parsed, ParserConfig, parse_stream
from services.safety_rules.bootstrap import CLIENT_ID
from shared.events import RecordIngested, deterministic_id
from shared.messaging.broker import aiokafka_options
from shared.settings import KafkaSettings
from trialwatch.devstack import kafka_admin, pg_cluster, pg_layout
from trialwatch.devstack.paths import ALEMBIC_INI, REPO_ROOT
from trialwatch.devstack.settings import Settings, load_settings
from trialwatch.devstack.topics import TOPICS

STUDY = "ANAKINRA-AD"
PARTITIONS = {spec.name: spec.partitions for spec in TOPICS}
CLOCK_TICKS = 100  # of /proc/<pid>/stat times


def parsed(path: Path) -> Iterator[Parsed]:
    config = ParserConfig(study_ids=frozenset({STUDY}), default_study_id=STUDY)
    with path.open("rb") as stream:
        for result in parse_stream(stream, config, name=path.name):
            if isinstance(result, Parsed) and result.events and not result.non_production:
                yield result


def ingested_records(data: Path, count: int) -> list[RecordIngested]:
    """``count`` records as ingest publishes them: two NDJSON records, then three HL7 messages, and so on."""
    ndjson, hl7 = parsed(data / "records-000.ndjson"), parsed(data / "labs-000.hl7")
    rounds = itertools.chain.from_iterable(zip(ndjson, ndjson, hl7, hl7, hl7, strict=False))
    now = datetime.now(UTC)
    return [
        RecordIngested(
            record_id=deterministic_id(record.key),
            dedup_key=record.key,
            study_id=record.events[0].study_id,
            received_at=now,
            channel="file",
            events=list(record.events),
        )
        for record in itertools.islice(rounds, count)
    ]


def ensure_data(data: Path, count: int) -> Path:
    if (data / "manifest.json").exists():
        return data
    generate(data, records=max(10_000, count * 2), participants=100)
    return data


def create_database(cfg: Settings, name: str) -> str:
    pg_cluster.psql(cfg, pg_layout.layout(cfg), f'CREATE DATABASE "{name}" OWNER "{cfg.pg_target().user}";')
    url = cfg.database_url.rsplit("/", 1)[0] + f"/{name}"
    argv = [sys.executable, "-m", "alembic", "-c", str(ALEMBIC_INI), "upgrade", "head"]
    env = {**os.environ, "DATABASE_URL": url}
    done = subprocess.run(argv, env=env, cwd=REPO_ROOT, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode()[-3000:])
    return url


class Service:
    """One safety_rules subprocess on the isolated database, topics and group."""

    def __init__(self, cfg: Settings, url: str, prefix: str, log: Path) -> None:
        self.port = 18000 + os.getpid() % 1000
        env = {**Services(cfg, log.parent).env, "DATABASE_URL": url, "TRIALWATCH_RULES_PORT": str(self.port)}
        env |= {"TRIALWATCH_RULES_TOPIC_PREFIX": prefix, "TRIALWATCH_RULES_CONSUMER_GROUP": f"bench-{prefix}"}
        env.pop("TRIALWATCH_STUDY", None)
        with log.open("wb") as out:
            argv = [sys.executable, "-m", "services.safety_rules"]
            self.process = subprocess.Popen(argv, env=env, cwd=REPO_ROOT, stdout=out, stderr=out)

    def cpu_seconds(self) -> float:
        return sum(self.user_system_seconds())

    def user_system_seconds(self) -> tuple[float, float]:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS

    async def wait_healthy(self) -> None:
        await wait_http_healthy(self.process, f"http://127.0.0.1:{self.port}/healthz", "safety_rules")

    async def latency_quantiles(self) -> dict[str, float]:
        """p50 and p99 as the upper bound of the histogram bucket they fall in."""
        async with httpx.AsyncClient() as client:
            body = (await client.get(f"http://127.0.0.1:{self.port}/metrics")).text
        name = "safety_rules_processing_latency_seconds_bucket"
        buckets = sorted(
            (float(sample.labels["le"]), sample.value)
            for family in text_string_to_metric_families(body)
            for sample in family.samples
            if sample.name == name
        )
        total = buckets[-1][1] if buckets else 0.0
        return {q: next((le for le, n in buckets if n >= total * float(q[1:]) / 100), 0.0) for q in ("p50", "p99")}


def postgres_cpu_seconds(cfg: Settings) -> float:
    """CPU time of the stack's PostgreSQL so far: the postmaster's own and its ended children's (``cutime``,
    ``cstime``: a backend's time is added there when it exits), and that of the children still running."""
    postmaster = int((pg_layout.layout(cfg).data / "postmaster.pid").read_text().split()[0])
    fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    own = sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(pid) for pid in children(postmaster))


async def backend_cpu_seconds(db: AsyncEngine, seen: dict[int, float]) -> float:
    """CPU time so far of the service's own backends (its connections to the benchmark's database; the
    server's background processes aside), each as last read (``seen``: one that ended keeps its last reading)."""
    query = text(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        " AND application_name = :name"
    )
    async with db.connect() as connection:
        pids = (await connection.execute(query, {"name": CLIENT_ID})).scalars().all()
    seen.update({pid: cpu_seconds(pid) for pid in pids})
    return sum(seen.values())


async def publish(kafka: KafkaSettings, topic: str, records: Sequence[RecordIngested], rate: float) -> float:
    """Sends every record keyed by study; returns the seconds it took. Paced at ``rate``/s when > 0, each
    record then received (``received_at``) when it is sent; else as fast as the producer goes."""
    producer = AIOKafkaProducer(enable_idempotence=True, linger_ms=5, **aiokafka_options(kafka))
    await producer.start()
    values = [record.model_dump_json().encode() for record in records] if rate <= 0 else []
    started = time.monotonic()
    try:
        pending = []
        for number, record in enumerate(records):
            if rate > 0:
                await asyncio.sleep(max(0.0, started + number / rate - time.monotonic()))
                value = record.model_copy(update={"received_at": datetime.now(UTC)}).model_dump_json().encode()
            else:
                value = values[number]
            pending.append(await producer.send(topic, value, key=STUDY.encode()))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.monotonic() - started


async def wal_lsn(db: AsyncEngine) -> int:
    """The server's WAL insert position in bytes (the stack serves only this benchmark: the WAL written
    between two readings is what the service's transactions cost, plus checkpoints' full-page images)."""
    async with db.connect() as connection:
        query = text("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint")
        return int((await connection.execute(query)).scalar_one())


def lsn_text(position: int) -> str:
    """A WAL position as PostgreSQL writes it (what ``pg_waldump --start/--end`` take)."""
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


async def table_rows(db: AsyncEngine) -> dict[str, dict[str, int]]:
    """Per safety_rules table of the benchmark's database: rows inserted, updated (of which HOT) and
    deleted so far (the statistics collector's counters, which lag up to a second behind)."""
    query = text(
        "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del FROM pg_stat_user_tables"
        " WHERE schemaname = 'safety_rules' ORDER BY relname"
    )
    async with db.connect() as connection:
        rows = (await connection.execute(query)).all()
    counts = {name: {"ins": ins, "upd": upd, "hot": hot, "del": gone} for name, ins, upd, hot, gone in rows}
    return {name: count for name, count in counts.items() if any(count.values())}


async def settled_table_rows(db: AsyncEngine) -> dict[str, dict[str, int]]:
    """`table_rows` once the backends have reported their last transactions (at most a second later)."""
    await asyncio.sleep(1.5)
    return await table_rows(db)


async def processed(db: AsyncEngine) -> int:
    async with db.connect() as connection:
        return int((await connection.execute(text("SELECT count(*) FROM safety_rules.processed_event"))).scalar_one())


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = load_settings("test", create=False)
    values = ingested_records(ensure_data(args.data, args.records), args.records)
    prefix, name = f"bench.{uuid.uuid4().hex[:8]}.", f"bench_rules_{uuid.uuid4().hex[:10]}"
    topics = [prefix + base for base in ("trialwatch.events.v1", "trialwatch.signals.v1", "trialwatch.dlq.v1")]
    admin = kafka_admin.admin_client(cfg.bootstrap, timeout_ms=30_000)
    await admin.start()
    await admin.create_topics([NewTopic(t, PARTITIONS[t.removeprefix(prefix)], 1) for t in topics])
    url = await asyncio.to_thread(create_database, cfg, name)
    db = create_async_engine(url)
    service = Service(cfg, url, prefix, Path(args.log))
    try:
        await service.wait_healthy()
        backends: dict[int, float] = {}
        backends_before = await backend_cpu_seconds(db, backends)
        wal_before = await wal_lsn(db)
        system_before = service.user_system_seconds()[1]
        cpu_before, pg_before, started = service.cpu_seconds(), postgres_cpu_seconds(cfg), time.monotonic()
        sending = asyncio.create_task(publish(KafkaSettings.from_mapping(cfg.env), topics[0], values, args.rate))
        peak = 0.0
        distinct = len({record.record_id for record in values})  # the stream re-sends about 1 % of its records
        while await processed(db) < distinct:
            if service.process.poll() is not None:
                raise RuntimeError(f"safety_rules died; see {args.log}")
            peak = max(peak, rss_mb(service.process.pid)[1])
            await backend_cpu_seconds(db, backends)
            await asyncio.sleep(0.1)
        seconds, cpu = time.monotonic() - started, service.cpu_seconds() - cpu_before
        pg_cpu = postgres_cpu_seconds(cfg) - pg_before
        backends_cpu = await backend_cpu_seconds(db, backends) - backends_before
        wal = await wal_lsn(db) - wal_before
        rss_now, rss_peak = rss_mb(service.process.pid)
        done = len(values)
        return {
            "records": done,
            "distinct_records": distinct,
            "seconds": round(seconds, 2),
            "publish_seconds": round(await sending, 2),
            "records_per_s": round(done / seconds, 1),
            "service_cpu_ms_per_record": round(1000 * cpu / done, 3),
            "records_per_cpu_s": round(done / cpu, 1) if cpu else None,
            "service_system_cpu_share": round((service.user_system_seconds()[1] - system_before) / cpu, 2)
            if cpu
            else None,
            "postgres_cpu_s": round(pg_cpu, 2),
            "postgres_cpu_ms_per_record": round(1000 * pg_cpu / done, 3),
            "service_backends_cpu_s": round(backends_cpu, 2),
            "service_backends_cpu_ms_per_record": round(1000 * backends_cpu / done, 3),
            "wal_mb": round(wal / 2**20, 1),
            "wal_bytes_per_record": round(wal / done),
            "wal_range": f"{lsn_text(wal_before)}..{lsn_text(wal_before + wal)}",
            "rss_mb": round(rss_now, 1),
            "peak_rss_mb": round(max(peak, rss_peak), 1),
            "latency_s": await service.latency_quantiles(),
            "load_average": os.getloadavg(),
            "rows": await settled_table_rows(db),
        }
    finally:
        service.process.terminate()
        await asyncio.to_thread(service.process.wait, 30)
        await db.dispose()
        await admin.delete_topics(topics)
        await admin.close()
        if args.keep_database:
            print(f"kept database {name} (drop it with DROP DATABASE)")
        else:
            pg_cluster.psql(cfg, pg_layout.layout(cfg), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rules_service", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=0.0, help="records/s to pace at (0: as fast as possible)")
    parser.add_argument("--data", type=Path, default=Path("out/bench-data"))
    parser.add_argument("--log", default="out/bench-rules-service.log")
    parser.add_argument("--keep-database", action="store_true", help="leave the database for inspection")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    for key, value in result.items():
        print(f"{key:>28}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
