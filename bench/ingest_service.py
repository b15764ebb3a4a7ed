"""CPU cost of the ingest service alone, on the test stack: records per CPU second, and PostgreSQL's share.

    python -m bench.ingest_service [--records 20000] [--profile out/ingest.svg]

An isolated deployment: a new database migrated to head and one `python -m services.ingest` subprocess on
its own ports; the database is dropped afterwards (its RecordIngested go to the stack's events topic, which
nothing reads during the run). The stream is bench.pipeline's (seed 3: 60 % HL7 ORU over 4 MLLP
connections with up to 64 frames in flight, 40 % NDJSON over 2 HTTP clients, up to 100 lines a request),
sent as fast as ingest acknowledges. The clock runs from the first send until every outbox row is
published. Reports ingest's CPU per record, the CPU of the stack's PostgreSQL (postmaster and backends)
and Kafka broker over the same span, and PostgreSQL's transaction and row counts for the database.
With ``--profile``, py-spy samples ingest during the run (``--nonblocking``) and writes a flame graph.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.pipeline.feed import FeedResult, ensure_stream, feed, items
from bench.pipeline.processes import (
    Services,
    cpu_seconds,
    infrastructure_pids,
    wait_http_healthy,
    with_reaped_children,
)
from bench.rules_service import create_database
from trialwatch.devstack import pg_cluster, pg_layout
from trialwatch.devstack.paths import REPO_ROOT
from trialwatch.devstack.settings import Settings, load_settings

PY_SPY = Path("/tmp/spyenv/bin/py-spy")
DRAIN_SECONDS = 120.0
STATEMENTS = """
SELECT round(s.total_exec_time::numeric, 1) AS ms, s.calls, s.rows, left(regexp_replace(s.query, '\\s+', ' ', 'g'), 110)
FROM pg_stat_statements AS s JOIN pg_database AS d ON d.oid = s.dbid
WHERE d.datname = '{name}' ORDER BY s.total_exec_time DESC LIMIT 15;
"""
STATS = "SELECT xact_commit, tup_inserted, tup_updated, tup_returned FROM pg_stat_database WHERE datname = :name"
#: WAL written by the whole cluster (the test stack's PostgreSQL serves only this run while it lasts).
WAL_NOW = "SELECT pg_current_wal_lsn()::text"
WAL_SINCE = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), CAST(CAST(:before AS text) AS pg_lsn))::bigint"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class IngestProcess:
    """One ingest subprocess on the isolated database, on ports of its own."""

    def __init__(self, cfg: Settings, url: str, log: Path) -> None:
        self.http_port, self.mllp_port = free_port(), free_port()
        env = {**Services(cfg, log.parent).env, "DATABASE_URL": url}
        env |= {"TRIALWATCH_INGEST_PORT": str(self.http_port), "TRIALWATCH_MLLP_PORT": str(self.mllp_port)}
        env.pop("TRIALWATCH_STUDY", None)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as out:
            argv = [sys.executable, "-m", "services.ingest"]
            self.process = subprocess.Popen(argv, env=env, cwd=REPO_ROOT, stdout=out, stderr=out)

    async def wait_healthy(self) -> None:
        await wait_http_healthy(self.process, f"http://127.0.0.1:{self.http_port}/healthz", "ingest")


def system_seconds(pid: int) -> float:
    """The kernel's share of ``cpu_seconds`` (system calls: sockets, the event loop's polling)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return int(fields[12]) / os.sysconf("SC_CLK_TCK")


def infrastructure_cpu(cfg: Settings) -> dict[str, float]:
    """Kafka's broker, and PostgreSQL as a whole: the postmaster, its live children, and the children that
    ended in between (autovacuum workers, closed connections' backends), which the postmaster reaped.
    Counting only the processes alive at both ends missed those."""
    pids = infrastructure_pids(cfg)
    cpu = {"kafka": sum(cpu_seconds(pid) for pid in pids.get("kafka", []))}
    if "postgres" in pids:
        postmaster, *children = pids["postgres"]
        cpu["postgres"] = with_reaped_children(postmaster) + sum(cpu_seconds(pid) for pid in children)
    return cpu


async def counts(db: AsyncEngine, name: str) -> dict[str, int]:
    async with db.connect() as connection:
        row = (await connection.execute(text(STATS), {"name": name})).one()
        pending = await connection.execute(text("SELECT count(*) FROM ingest.outbox WHERE published_at IS NULL"))
        raw = await connection.execute(text("SELECT count(*) FROM ingest.raw_input"))
        return {
            "transactions": int(row[0]),
            "rows_inserted": int(row[1]),
            "rows_updated": int(row[2]),
            "rows_returned": int(row[3]),
            "outbox_pending": int(pending.scalar_one()),
            "raw_input": int(raw.scalar_one()),
        }


async def scalar(db: AsyncEngine, statement: str, **params: Any) -> Any:
    async with db.connect() as connection:
        return (await connection.execute(text(statement), params)).scalar_one()


async def published(db: AsyncEngine, name: str, deadline: float) -> dict[str, int]:
    """The counts once the outbox holds nothing pending (or at the deadline)."""
    while True:
        now = await counts(db, name)
        if not now["outbox_pending"] or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.05)


def start_profiler(pid: int, out: Path) -> subprocess.Popen[bytes]:
    fmt = "flamegraph" if out.suffix == ".svg" else "raw"  # raw: collapsed stacks, one line each
    argv = [
        str(PY_SPY),
        "record",
        "--nonblocking",
        "--gil",
        "--pid",
        str(pid),
        "--rate",
        "200",
        "-f",
        fmt,
        "-o",
        str(out),
    ]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = load_settings("test", create=False)
    stream = list(items(ensure_stream(args.data, args.records, args.seed)))[: args.records]
    name = f"bench_ingest_{uuid.uuid4().hex[:10]}"
    url = await asyncio.to_thread(create_database, cfg, name)
    db = create_async_engine(url)
    service = IngestProcess(cfg, url, Path(args.log))
    profiler: subprocess.Popen[bytes] | None = None
    try:
        await service.wait_healthy()
        before_db, load_before = await counts(db, name), os.getloadavg()
        wal_before = await scalar(db, WAL_NOW)
        before_cpu, before_infra = cpu_seconds(service.process.pid), infrastructure_cpu(cfg)
        before_system = system_seconds(service.process.pid)
        if args.statements:
            pg_cluster.psql(cfg, pg_layout.layout(cfg), "SELECT pg_stat_statements_reset();")
        if args.profile:
            profiler = start_profiler(service.process.pid, args.profile)
        started, fed = time.monotonic(), FeedResult()
        await feed(
            stream,
            fed,
            mllp=("127.0.0.1", service.mllp_port),
            http_url=f"http://127.0.0.1:{service.http_port}/v1/records",
            token=cfg.env["TRIALWATCH_TOKEN"],
            rate=None,
            lanes=args.lanes,
        )
        fed_seconds = time.monotonic() - started
        now = await published(db, name, started + DRAIN_SECONDS)
        seconds = time.monotonic() - started
        cpu = cpu_seconds(service.process.pid) - before_cpu
        system = system_seconds(service.process.pid) - before_system
        wal = int(await scalar(db, WAL_SINCE, before=wal_before))
        infra = {key: round(value - before_infra.get(key, 0.0), 2) for key, value in infrastructure_cpu(cfg).items()}
        done = fed.sent
        delta = {key: now[key] - before_db[key] for key in ("transactions", "rows_inserted", "rows_updated")}
        if args.statements:
            print(pg_cluster.psql(cfg, pg_layout.layout(cfg), STATEMENTS.format(name=name)))
        return {
            "database": name,
            "records_sent": done,
            "rejected": fed.rejected,
            "raw_input_rows": now["raw_input"],
            "outbox_pending_at_end": now["outbox_pending"],
            "feed_seconds": round(fed_seconds, 2),
            "seconds_to_published": round(seconds, 2),
            "records_per_s": round(done / seconds, 1),
            "ingest_cpu_s": round(cpu, 2),
            "ingest_system_cpu_s": round(system, 2),
            "ingest_cpu_ms_per_record": round(1000 * cpu / done, 4),
            "ingest_records_per_cpu_s": round(done / cpu, 1) if cpu else None,
            "postgres_cpu_s": infra.get("postgres"),
            "postgres_cpu_ms_per_record": round(1000 * infra.get("postgres", 0.0) / done, 4),
            "kafka_cpu_s": infra.get("kafka"),
            "wal_bytes_per_record": round(wal / done, 1),
            "pg_transactions": delta["transactions"],
            "pg_rows_inserted": delta["rows_inserted"],
            "pg_rows_updated": delta["rows_updated"],
            "load_average_before": tuple(round(x, 2) for x in load_before),
            "load_average_after": tuple(round(x, 2) for x in os.getloadavg()),
            "errors": fed.errors[:3],
        }
    finally:
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
            await asyncio.to_thread(profiler.wait, 60)
        service.process.terminate()
        await asyncio.to_thread(service.process.wait, 30)
        await db.dispose()
        if not args.keep:
            pg_cluster.psql(cfg, pg_layout.layout(cfg), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest_service", description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--lanes", type=int, default=4, help="MLLP connections (HTTP clients: half)")
    parser.add_argument("--data", type=Path, default=Path("out/bench-pipeline/data"))
    parser.add_argument("--log", default="out/bench-ingest-service.log")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy flame graph of ingest (SVG)")
    parser.add_argument(
        "--statements", action="store_true", help="print pg_stat_statements' top statements (needs the extension)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    for key, value in result.items():
        print(f"{key:>28}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
