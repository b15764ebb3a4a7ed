"""Faults in the middle of a stream (issue #4): nothing accepted is lost, nothing is signalled twice.

Each test sends a generated stream (the replay benchmark's composition, `bench.generate`) through
ingest, safety_rules and notifier running as real subprocesses, strikes while work is in flight (the
test asserts consumer lag or unpublished outbox rows at that moment), lets the pipeline recover, and
ends like the live-equals-replay test: every accepted record processed once and `trialwatch signals`
equal to `trialwatch replay` of the same files (CLOCK-BREACH aside). Redeliveries absorbed (records
evaluated again and skipped by the processed-record table, signals received again and skipped by the
notifier) are counted from the services' logs and reported in out/reliability/.

To have work in flight, safety_rules starts only once the first half of the stream is in: it meets a
backlog, and the second half arrives while it works through it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
from faults import (
    SERVICE_PORTS,
    Fault,
    Pipeline,
    Probe,
    difference,
    kill_and_restart,
    kill_between_publish_and_mark,
    kill_during_ack,
    live_signals,
    postgres_outage,
    produce,
    replay,
    restart_broker,
    without_breaches,
)
from sqlalchemy.ext.asyncio import create_async_engine

from shared.messaging.topics import DEAD_LETTER, EVENTS, IN_RECORDS, SIGNALS
from shared.settings import KafkaSettings
from trialwatch import devstack
from trialwatch.devstack.kafka_admin import ClusterInfo
from trialwatch.devstack.paths import REPO_ROOT
from trialwatch.devstack.settings import PgTarget, Settings

pytestmark = pytest.mark.integration

STREAM_RECORDS = 4000
STREAM_PARTICIPANTS = 50
REPORTS = REPO_ROOT / "out" / "reliability"
PROGRESS_BEFORE_FAULT = 100  # records safety_rules has processed when the fault strikes
RELAY_WINDOW_ATTEMPTS = 4  # kills of ingest to land one inside its relay's publish-to-mark window
KILLS = 3  # SIGKILLs of safety_rules, each after KILL_SPACING more records were processed
KILL_SPACING = 40
PROGRESS_SECONDS = 180.0
SEND_SECONDS = 600.0
DRAIN_SECONDS = 600.0
POSTGRES_OUTAGE_SECONDS = 10.0
SERVICES = tuple(SERVICE_PORTS)
POISON = b"\x00\xff\xfe garbage, not JSON \x13\x37"

#: Signals persisted by safety_rules that the notifier never recorded as processed (its processed_event
#: table is keyed by signal id, so a signal it received twice is one row there).
NOT_NOTIFIED = (
    "SELECT count(*) FROM safety_rules.signal s WHERE s.rule_id <> 'CLOCK-BREACH' AND NOT EXISTS "
    "(SELECT 1 FROM notifier.processed_event p WHERE p.event_id = s.signal_id)"
)

Strike = Callable[[], Awaitable[Fault]]


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """A few thousand records of the replay benchmark's stream, in its replay order."""
    directory = tmp_path_factory.mktemp("fault-stream")
    argv = [sys.executable, "-m", "bench.generate", "--dir", str(directory), "--records", str(STREAM_RECORDS)]
    argv += ["--participants", str(STREAM_PARTICIPANTS), "--shards", "2", "--seed", "11"]
    subprocess.run(argv, cwd=REPO_ROOT, check=True, capture_output=True, timeout=120)
    manifest = json.loads((directory / "manifest.json").read_text())
    return [directory / entry["name"] for entry in manifest["files"]]


@pytest.fixture(scope="module")
def pipeline(
    stack_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    cluster_info: ClusterInfo,
    postgres_ready: PgTarget,
) -> Iterator[Pipeline]:
    processes = Pipeline(stack_settings, tmp_path_factory.mktemp("fault-logs"))
    processes.migrate()
    try:
        yield processes
    finally:
        processes.stop()


@pytest.fixture(autouse=True)
def infrastructure_restored(stack_settings: Settings, infrastructure: None) -> Iterator[None]:
    """Whatever a test did to the broker or the database, the next one finds both running (only after
    `infrastructure` found them running: a missing stack fails the test, it is never started here)."""
    yield
    devstack.kafka_start(stack_settings.stack)
    devstack.pg_start(stack_settings.stack)


@pytest_asyncio.fixture(loop_scope="session")
async def probe(stack_settings: Settings) -> AsyncIterator[Probe]:
    engine = create_async_engine(stack_settings.database_url, pool_pre_ping=True)
    yield Probe(engine, KafkaSettings.from_mapping(stack_settings.env))
    await engine.dispose()


def log_count(pipeline: Pipeline, marks: dict[str, int], service: str, event: str, **fields: Any) -> int:
    """JSON log lines of ``service`` since ``marks`` with this event and these field values (across
    restarts: a restarted service appends to its log)."""
    count = 0
    for line in pipeline.log(service, marks[service]).splitlines():
        if f'"{event}"' not in line:
            continue
        try:
            entry = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        count += entry.get("event") == event and all(entry.get(k) == v for k, v in fields.items())
    return count


async def send(pipeline: Pipeline, files: list[Path], *extra: str) -> None:
    result = await asyncio.to_thread(pipeline.cli, "send", *extra, *map(str, files), timeout=SEND_SECONDS)
    assert result.returncode in (0, 65), result.stderr.decode()[-3000:] + pipeline.logs()


async def processed(probe: Probe) -> int:
    return await probe.scalar("SELECT count(*) FROM safety_rules.processed_event")


async def processed_at_least(pipeline: Pipeline, probe: Probe, count: int) -> None:
    deadline = time.monotonic() + PROGRESS_SECONDS
    while await processed(probe) < count:
        assert time.monotonic() < deadline, f"safety_rules processed < {count} records{pipeline.logs()}"
        await asyncio.sleep(0.2)


async def published_twice(probe: Probe, topic: str) -> int:
    """Records published more than once on ``topic`` (the relay's at-least-once, absorbed downstream)."""
    ids = [dict(record.headers or ()).get("event_id", b"") for record in await probe.read(topic, {})]
    return sum(count - 1 for count in Counter(ids).values() if count > 1)


async def strike_mid_stream(
    pipeline: Pipeline, probe: Probe, files: list[Path], strike: Strike, *, send_during_fault: bool
) -> Fault:
    """From an empty pipeline: the first half of ``files`` in while safety_rules is down (a backlog),
    then safety_rules up and the second half sent while it works; ``strike`` once it has made some
    progress. Without ``send_during_fault`` everything is sent before safety_rules starts."""
    pipeline.stop()
    await probe.reset()
    await asyncio.to_thread(pipeline.start, "ingest", "notifier")
    half = len(files) // 2 if send_during_fault else len(files)
    await send(pipeline, files[:half])
    await asyncio.to_thread(pipeline.start, "safety_rules")
    rest = asyncio.create_task(send(pipeline, files[half:])) if files[half:] else None
    await processed_at_least(pipeline, probe, PROGRESS_BEFORE_FAULT)
    fault = await strike()
    if rest is not None:
        await rest
    return fault


async def run_with_fault(
    pipeline: Pipeline, probe: Probe, files: list[Path], strike: Strike, *, send_during_fault: bool
) -> dict[str, Any]:
    started, marks = time.monotonic(), pipeline.log_marks()
    fault = await strike_mid_stream(pipeline, probe, files, strike, send_during_fault=send_during_fault)
    drain_seconds = await probe.drained(pipeline, DRAIN_SECONDS)
    elapsed = time.monotonic() - started
    return await verdict(pipeline, probe, files, fault, marks=marks, seconds=elapsed, drain_seconds=drain_seconds)


async def verdict(
    pipeline: Pipeline,
    probe: Probe,
    files: list[Path],
    fault: Fault,
    *,
    marks: dict[str, int],
    seconds: float,
    drain_seconds: float,
) -> dict[str, Any]:
    """Asserts the end state; returns the figures for the report."""
    assert fault.in_flight.total > 0, f"nothing in flight at the fault: {fault.in_flight}"
    published = await probe.scalar(f"SELECT count(*) FROM ingest.outbox WHERE topic = '{EVENTS}'")
    done = await processed(probe)
    assert done == published, f"{published} records accepted and published, {done} processed"
    live = live_signals(pipeline)
    replayed, _ = replay(pipeline, files)
    problem = difference(without_breaches(live), without_breaches(replayed))
    assert problem == "", problem + pipeline.logs()
    unnotified = await probe.scalar(NOT_NOTIFIED)
    assert unnotified == 0, f"{unnotified} persisted signals never reached the notifier{pipeline.logs()}"
    return {
        "fault": fault.name,
        "in_flight_at_fault": {"outbox": fault.in_flight.outbox, "lag": fault.in_flight.lag},
        "outage_seconds": round(fault.outage_seconds, 1),
        "records_processed": done,
        "signals": len(without_breaches(live)),
        "redeliveries_absorbed": {
            "safety_rules_records_skipped": log_count(
                pipeline, marks, "safety_rules", "record.evaluated", duplicate=True
            ),
            "notifier_signals_skipped": log_count(pipeline, marks, "notifier", "signal.received", alert_id=None),
            "events_published_twice": await published_twice(probe, EVENTS),
            "signals_published_twice": await published_twice(probe, SIGNALS),
        },
        "retries": {
            "consume_retries": sum(log_count(pipeline, marks, name, "consume.retrying") for name in SERVICES),
            "consume_redelivered_later": sum(
                log_count(pipeline, marks, name, "consume.redeliver_later") for name in SERVICES
            ),
            "outbox_publish_failures": sum(
                log_count(pipeline, marks, name, "outbox.publish_failed") for name in SERVICES
            ),
            "dead_lettered": sum(log_count(pipeline, marks, name, "consume.dead_lettered") for name in SERVICES),
        },
        "drain_seconds": round(drain_seconds, 1),
        "test_seconds": round(seconds, 1),
    }


def report(name: str, figures: dict[str, Any]) -> None:
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\n{name}: {json.dumps(figures)}")


async def test_safety_rules_killed_mid_stream_loses_and_repeats_nothing(
    pipeline: Pipeline, probe: Probe, stream: list[Path], stack_settings: Settings
) -> None:
    async def strike() -> Fault:
        """One SIGKILL wherever it lands, then KILLS - 1 while an offset commit is in flight."""
        kills = [await kill_and_restart(pipeline, probe, "safety_rules")]
        for _ in range(KILLS - 1):
            await processed_at_least(pipeline, probe, await processed(probe) + KILL_SPACING)
            kills.append(await kill_during_ack(pipeline, probe, stack_settings.stack, "safety_rules"))
        return Fault(f"kill -9 safety_rules x{KILLS}", kills[0].in_flight, sum(k.outage_seconds for k in kills))

    figures = await run_with_fault(pipeline, probe, stream, strike, send_during_fault=True)
    report("fault_kill_safety_rules", figures)


async def test_ingest_killed_between_publish_and_mark_republishes_and_safety_rules_skips(
    pipeline: Pipeline, probe: Probe, stream: list[Path], stack_settings: Settings
) -> None:
    """The relay's crash window (TECH_NOTES §5.5): a batch published but not marked goes out twice."""
    started, marks = time.monotonic(), pipeline.log_marks()
    pipeline.stop()
    await probe.reset()
    await asyncio.to_thread(pipeline.start, "ingest", "notifier")
    await send(pipeline, stream)  # safety_rules down: ingest's relay is still publishing the backlog
    kills = []
    for _ in range(RELAY_WINDOW_ATTEMPTS):  # a freeze may land outside a publishing round: try again
        kills.append(await kill_between_publish_and_mark(pipeline, probe, stack_settings.stack, "ingest"))
        if await published_twice(probe, EVENTS):
            break
    outage = sum(kill.outage_seconds for kill in kills)
    fault = Fault(f"{kills[0].name} (attempts: {len(kills)})", kills[0].in_flight, outage)
    await asyncio.to_thread(pipeline.start, "safety_rules")
    drain_seconds = await probe.drained(pipeline, DRAIN_SECONDS)
    elapsed = time.monotonic() - started
    figures = await verdict(pipeline, probe, stream, fault, marks=marks, seconds=elapsed, drain_seconds=drain_seconds)
    report("fault_kill_ingest_relay", figures)
    absorbed = figures["redeliveries_absorbed"]
    assert absorbed["events_published_twice"] >= 1, "the crash window was missed: no batch went out twice"
    assert absorbed["safety_rules_records_skipped"] == absorbed["events_published_twice"]


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
async def test_broker_restarted_mid_stream_loses_and_repeats_nothing(
    pipeline: Pipeline, probe: Probe, stream: list[Path], stack_settings: Settings, kill: bool
) -> None:
    figures = await run_with_fault(
        pipeline, probe, stream, lambda: restart_broker(probe, stack_settings.stack, kill=kill), send_during_fault=True
    )
    report(f"fault_broker_{'sigkill' if kill else 'sigterm'}", figures)


async def test_postgres_stopped_for_ten_seconds_mid_stream_loses_and_repeats_nothing(
    pipeline: Pipeline, probe: Probe, stream: list[Path], stack_settings: Settings
) -> None:
    strike = lambda: postgres_outage(probe, stack_settings.stack, POSTGRES_OUTAGE_SECONDS)  # noqa: E731
    figures = await run_with_fault(pipeline, probe, stream, strike, send_during_fault=False)
    report("fault_postgres_outage", figures)


async def test_poison_is_dead_lettered_with_its_reason_and_later_records_flow(
    pipeline: Pipeline, probe: Probe, stream: list[Path], stack_settings: Settings
) -> None:
    kafka = KafkaSettings.from_mapping(stack_settings.env)
    poisoned: list[Any] = []
    later = next(path for path in reversed(stream) if path.suffix == ".ndjson")  # sent after the poison
    files = [path for path in stream if path != later]

    async def strike() -> Fault:
        """Same keys as the records behind it: the study's events partition, and the partition
        `trialwatch send --via kafka` gives ``later`` (keyed by its path)."""
        flight = await probe.in_flight()
        poisoned.extend(await produce(kafka, EVENTS, [POISON], key=b"ANAKINRA-AD"))
        poisoned.extend(await produce(kafka, IN_RECORDS, [POISON], key=str(later).encode()))
        return Fault("poison on trialwatch.events.v1 and trialwatch.in.records", flight, 0.0)

    started, marks = time.monotonic(), pipeline.log_marks()
    fault = await strike_mid_stream(pipeline, probe, files, strike, send_during_fault=True)
    await probe.drained(pipeline, DRAIN_SECONDS)
    await send(pipeline, [later], "--via", "kafka")  # through trialwatch.in.records, behind its poison
    drain_seconds = await probe.drained(pipeline, DRAIN_SECONDS)
    elapsed = time.monotonic() - started
    figures = await verdict(
        pipeline, probe, [*files, later], fault, marks=marks, seconds=elapsed, drain_seconds=drain_seconds
    )
    letters = {
        (h["x-original-topic"], int(h["x-original-partition"]), int(h["x-original-offset"])): h["x-reason"]
        for h in ({k: v.decode() for k, v in r.headers or ()} for r in await probe.read(DEAD_LETTER, {}))
        if "x-original-topic" in h
    }
    reasons = {meta.topic: letters.get((meta.topic, meta.partition, meta.offset), "") for meta in poisoned}
    assert all(reasons.values()) and len(reasons) == 2, f"dead letters of the poison: {reasons}{pipeline.logs()}"
    report("fault_poison", {**figures, "dead_letter_reasons": reasons})
