"""Faults in the middle of a stream (issue #4): nothing accepted is lost, nothing is signalled twice.

Each test sends a generated stream (the replay benchmark's composition, `bench.generate`) through
ingest, safety_rules and notifier running as real subprocesses, strikes while work is in flight (the
test asserts consumer lag or unpublished outbox rows at that moment), lets the pipeline recover, and
ends like the live-equals-replay test: every accepted record processed once and `trialwatch signals`
equal to `trialwatch replay` of the same files (CLOCK-BREACH aside). Redeliveries absorbed (records
evaluated again and skipped by the processed-record table, records and signals published twice) are
counted from the services' logs and the topics, and reported in out/reliability/.

To have work in flight, safety_rules boots while the first half of the stream is sent: it meets a
backlog; the second half arrives while it works through it, and the fault strikes as soon as published
records wait for it. Every test sends the same files in the same order, so `trialwatch replay` runs
once for the module.
"""

from __future__ import annotations

import asyncio
import functools
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
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
    broker_frozen,
    difference,
    kill_and_restart,
    kill_between_publish_and_mark,
    live_signals,
    migrated_pipeline,
    opened_probe,
    postgres_outage,
    produce,
    replay,
    restart_broker,
    without_breaches,
)

from shared.messaging.retry import RetryPolicy
from shared.messaging.topics import DEAD_LETTER, EVENTS, IN_RECORDS, SIGNALS
from shared.settings import KafkaSettings
from trialwatch import devstack
from trialwatch.devstack.kafka_admin import ClusterInfo
from trialwatch.devstack.paths import REPO_ROOT
from trialwatch.devstack.settings import PgTarget, Settings

pytestmark = pytest.mark.integration

# 1,000 records of 15 participants: ~26 signals in replay, a study-level halting rule (H-NEUT) among them.
STREAM_RECORDS = 1000
STREAM_PARTICIPANTS = 15
STREAM_SEED = 11
REPORTS = REPO_ROOT / "out" / "reliability"
RELAY_WINDOW_ATTEMPTS = 3  # kills of ingest inside its relay's publish-to-mark window (each placed for certain)
RELAY_ROUND_ROWS = 1  # ingest's relay rounds in the relay test (TRIALWATCH_INGEST_RELAY_BATCH)
PROGRESS_SECONDS = 180.0
SEND_SECONDS = 300.0
DRAIN_SECONDS = 300.0
POLL_SECONDS = 0.05
POSTGRES_OUTAGE_SECONDS = 10.0
SERVICES = tuple(SERVICE_PORTS)
POISON = b"\x00\xff\xfe garbage, not JSON \x13\x37"

#: Signals persisted by safety_rules that the notifier never recorded as processed (its processed_event
#: table is keyed by signal id, so a signal it received twice is one row there).
NOT_NOTIFIED = (
    "SELECT count(*) FROM safety_rules.signal s WHERE s.rule_id <> 'CLOCK-BREACH' AND NOT EXISTS "
    "(SELECT 1 FROM notifier.processed_event p WHERE p.event_id = s.signal_id)"
)
PUBLISHED = f"SELECT count(*) FROM ingest.outbox WHERE topic = '{EVENTS}'"
PUBLISHED_DONE = f"{PUBLISHED} AND published_at IS NOT NULL"

Strike = Callable[[], Awaitable[Fault]]


@dataclass(frozen=True)
class Rig:
    """What every fault test works with: the services, the probes, the stream and its oracle."""

    pipeline: Pipeline
    probe: Probe
    stream: list[Path]
    expected: list[dict[str, Any]]
    stack: str


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The replay benchmark's stream, its NDJSON files first and last: the poison test sends the last
    file through Kafka, behind its poison (the others send it like the rest)."""
    directory = tmp_path_factory.mktemp("fault-stream")
    argv = [sys.executable, "-m", "bench.generate", "--dir", str(directory), "--records", str(STREAM_RECORDS)]
    argv += ["--participants", str(STREAM_PARTICIPANTS), "--shards", "2", "--seed", str(STREAM_SEED)]
    subprocess.run(argv, cwd=REPO_ROOT, check=True, capture_output=True, timeout=120)
    manifest = json.loads((directory / "manifest.json").read_text())
    files = [directory / entry["name"] for entry in manifest["files"]]
    last = next(path for path in reversed(files) if path.suffix == ".ndjson")
    return [*(path for path in files if path != last), last]


@pytest.fixture(scope="module")
def pipeline(
    stack_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    cluster_info: ClusterInfo,
    postgres_ready: PgTarget,
) -> Iterator[Pipeline]:
    with migrated_pipeline(stack_settings, tmp_path_factory.mktemp("fault-logs")) as processes:
        yield processes


@pytest.fixture(scope="module")
def expected(pipeline: Pipeline, stream: list[Path]) -> list[dict[str, Any]]:
    """The oracle: `trialwatch replay` of the stream, CLOCK-BREACH aside (live, the wall clock's)."""
    signals, _ = replay(pipeline, stream)
    assert signals, "the stream fires no rule: it cannot tell a lost signal"
    return without_breaches(signals)


@pytest.fixture(autouse=True)
def infrastructure_restored(stack_settings: Settings, infrastructure: None) -> Iterator[None]:
    """Whatever a test did to the broker or the database, the next one finds both running (only after
    `infrastructure` found them running: a missing stack fails the test, it is never started here)."""
    yield
    devstack.kafka_start(stack_settings.stack)
    devstack.pg_start(stack_settings.stack, migrate=False)  # `pipeline` migrated it


@pytest_asyncio.fixture(loop_scope="session")
async def probe(stack_settings: Settings) -> AsyncIterator[Probe]:
    async with opened_probe(stack_settings) as opened:
        yield opened


@pytest.fixture
def rig(
    pipeline: Pipeline, probe: Probe, stream: list[Path], expected: list[dict[str, Any]], stack_settings: Settings
) -> Rig:
    return Rig(pipeline, probe, stream, expected, stack_settings.stack)


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


async def progressed(pipeline: Pipeline, probe: Probe, count: int) -> None:
    """Waits until safety_rules has processed ``count`` records."""
    deadline = time.monotonic() + PROGRESS_SECONDS
    while (done := await processed(probe)) < count:
        assert time.monotonic() < deadline, f"safety_rules processed {done} < {count} records{pipeline.logs()}"
        await asyncio.sleep(POLL_SECONDS)


async def backlog(pipeline: Pipeline, probe: Probe, sending: asyncio.Task[None]) -> None:
    """Waits until records ingest published wait for safety_rules (published, not yet processed):
    the fault then strikes a service with work in hand. While the stream is still being sent, a
    moment without such records only means it is between rounds; once all is sent, it must come."""
    deadline = time.monotonic() + PROGRESS_SECONDS
    while await probe.scalar(PUBLISHED_DONE) <= await processed(probe):
        if sending.done():
            return  # all sent and processed already: the fault strikes what is left downstream
        assert time.monotonic() < deadline, f"nothing reached safety_rules{pipeline.logs()}"
        await asyncio.sleep(POLL_SECONDS)


async def published_twice(probe: Probe, topic: str) -> int:
    """Records published more than once on ``topic`` since the reset (the relays' at-least-once,
    absorbed downstream)."""
    ids = [dict(record.headers or ()).get("event_id", b"") for record in await probe.read(topic)]
    return sum(count - 1 for count in Counter(ids).values() if count > 1)


async def fresh_pipeline(pipeline: Pipeline, probe: Probe, *names: str) -> None:
    """Services stopped, topics and tables emptied, then ``names`` started (healthy)."""
    await asyncio.to_thread(pipeline.stop)
    await probe.reset()
    await asyncio.to_thread(pipeline.start, *names)


async def strike_mid_stream(pipeline: Pipeline, probe: Probe, files: list[Path], strike: Strike) -> Fault:
    """From an empty pipeline: the first half of ``files`` in while safety_rules boots; once it has committed
    its first batch, the second half is sent, and ``strike`` comes as soon as records wait for safety_rules,
    while the sending goes on. safety_rules is held still (SIGSTOP) from the second half until the strike is
    over: the pipeline is fast enough to finish the stream before a strike could land, and then nothing is in
    flight."""
    await fresh_pipeline(pipeline, probe, "ingest", "notifier")
    half = len(files) // 2
    pipeline.spawn("safety_rules")  # its start-up overlaps the sending: a Python service boots slower
    await send(pipeline, files[:half])
    await asyncio.to_thread(pipeline.wait_healthy, "safety_rules")
    await progressed(pipeline, probe, 1)
    rest = asyncio.create_task(send(pipeline, files[half:]))
    pipeline.freeze("safety_rules")
    try:
        await backlog(pipeline, probe, rest)
        fault = await strike()
    finally:
        pipeline.thaw("safety_rules")
    await rest
    return fault


async def strike_held_back(pipeline: Pipeline, probe: Probe, files: list[Path], strike: Strike) -> Fault:
    """For a fault during which nothing can be sent (ingest refuses input it cannot store): from an empty
    pipeline, safety_rules takes a first slice of ``files``, then is frozen (SIGSTOP) while the rest is sent
    and published, so a known backlog waits for it whatever its speed. ``strike`` thaws it once the fault is
    on, so it meets the fault with work in hand, or kills it where it stands; it is thawed in any case
    afterwards (a restarted one is not frozen: harmless)."""
    await fresh_pipeline(pipeline, probe, "ingest", "notifier")
    first = max(1, len(files) // 10)
    pipeline.spawn("safety_rules")
    await send(pipeline, files[:first])
    await asyncio.to_thread(pipeline.wait_healthy, "safety_rules")
    await progressed(pipeline, probe, 1)
    pipeline.freeze("safety_rules")
    try:
        await send(pipeline, files[first:])
        deadline = time.monotonic() + PROGRESS_SECONDS
        while (published := await probe.scalar(PUBLISHED_DONE)) < await probe.scalar(PUBLISHED):
            assert time.monotonic() < deadline, f"ingest did not publish what it accepted{pipeline.logs()}"
            await asyncio.sleep(POLL_SECONDS)
        assert published > await processed(probe), "no backlog waits for the frozen safety_rules"
        return await strike()
    finally:
        pipeline.thaw("safety_rules")


async def run_with_fault(rig: Rig, strike: Strike, *, held_back: bool = False) -> dict[str, Any]:
    started, marks = time.monotonic(), rig.pipeline.log_marks()
    struck = strike_held_back if held_back else strike_mid_stream
    fault = await struck(rig.pipeline, rig.probe, rig.stream, strike)
    drain_seconds = await rig.probe.drained(rig.pipeline, DRAIN_SECONDS)
    elapsed = time.monotonic() - started
    return await verdict(rig, fault, marks=marks, seconds=elapsed, drain_seconds=drain_seconds)


async def verdict(
    rig: Rig, fault: Fault, *, marks: dict[str, int], seconds: float, drain_seconds: float
) -> dict[str, Any]:
    """Asserts the end state; returns the figures for the report."""
    pipeline, probe, expected = rig.pipeline, rig.probe, rig.expected
    assert fault.in_flight.total > 0, f"nothing in flight at the fault: {fault.in_flight}"
    published = await probe.scalar(PUBLISHED)
    done = await processed(probe)
    assert done == published, f"{published} records accepted and published, {done} processed"
    live = without_breaches(live_signals(pipeline))
    problem = difference(live, expected)
    assert problem == "", problem + pipeline.logs()
    unnotified = await probe.scalar(NOT_NOTIFIED)
    assert unnotified == 0, f"{unnotified} persisted signals never reached the notifier{pipeline.logs()}"
    return {
        "fault": fault.name,
        "in_flight_at_fault": {"outbox": fault.in_flight.outbox, "lag": fault.in_flight.lag},
        "outage_seconds": round(fault.outage_seconds, 1),
        "records_processed": done,
        "signals": len(live),
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


async def test_safety_rules_killed_mid_stream_loses_and_repeats_nothing(rig: Rig) -> None:
    """SIGKILL while safety_rules holds a backlog: it is frozen (SIGSTOP, wherever it was: between polls or
    inside one) once it has taken a first slice, the rest is sent and published, then it is killed and
    started again. (Struck while it ran free, the pipeline could finish the whole stream first: nothing in flight.)"""

    async def strike() -> Fault:
        return await kill_and_restart(rig.pipeline, rig.probe, "safety_rules")

    report("fault_kill_safety_rules", await run_with_fault(rig, strike, held_back=True))


async def test_ingest_killed_between_publish_and_mark_republishes_and_safety_rules_skips(rig: Rig) -> None:
    """The relay's crash window (TECH_NOTES §5.5): a batch published but not marked goes out twice."""
    pipeline, probe = rig.pipeline, rig.probe
    started, marks = time.monotonic(), pipeline.log_marks()
    # One row per relay round: the backlog outlasts the sending however fast the relay's full rounds
    # are, and every round has its publish-to-mark window.
    pipeline.env["TRIALWATCH_INGEST_RELAY_BATCH"] = str(RELAY_ROUND_ROWS)
    try:
        await fresh_pipeline(pipeline, probe, "ingest", "notifier")
        # The relay publishes as fast as records come in (it is woken by each commit): with the broker held
        # still during the sending, the stream piles up in ingest's outbox, a backlog of a round per row.
        with broker_frozen(rig.stack):
            await send(pipeline, rig.stream)
        kills = []
        for _ in range(RELAY_WINDOW_ATTEMPTS):  # each kill is placed in the window: the first should do
            kills.append(await kill_between_publish_and_mark(pipeline, probe, rig.stack, "ingest", EVENTS))
            if await published_twice(probe, EVENTS):
                break
    finally:
        del pipeline.env["TRIALWATCH_INGEST_RELAY_BATCH"]
    await asyncio.to_thread(pipeline.stop, "ingest")  # back to the default rounds for the drain
    await asyncio.to_thread(pipeline.start, "ingest")
    outage = sum(kill.outage_seconds for kill in kills)
    fault = Fault(f"{kills[0].name} (attempts: {len(kills)})", kills[0].in_flight, outage)
    await asyncio.to_thread(pipeline.start, "safety_rules")
    drain_seconds = await probe.drained(pipeline, DRAIN_SECONDS)
    elapsed = time.monotonic() - started
    figures = await verdict(rig, fault, marks=marks, seconds=elapsed, drain_seconds=drain_seconds)
    report("fault_kill_ingest_relay", figures)
    absorbed = figures["redeliveries_absorbed"]
    assert absorbed["events_published_twice"] >= 1, "the crash window was missed: no batch went out twice"
    assert absorbed["safety_rules_records_skipped"] == absorbed["events_published_twice"]


async def test_broker_killed_and_restarted_mid_stream_loses_and_repeats_nothing(rig: Rig) -> None:
    """SIGKILL (a crash: no controlled shutdown, nothing flushed), then a start at once on the same data
    dir. (A SIGTERM restart is the gentler case of the same: test_devstack restarts the broker both ways.)"""

    async def strike() -> Fault:
        return await restart_broker(rig.probe, rig.stack, kill=True)

    report("fault_broker_sigkill", await run_with_fault(rig, strike))


async def test_postgres_stopped_for_ten_seconds_mid_stream_loses_and_repeats_nothing(rig: Rig) -> None:
    async def strike() -> Fault:
        thaw = functools.partial(rig.pipeline.thaw, "safety_rules")
        return await postgres_outage(rig.probe, rig.stack, POSTGRES_OUTAGE_SECONDS, stopped=thaw)

    report("fault_postgres_outage", await run_with_fault(rig, strike, held_back=True))


async def test_poison_is_dead_lettered_with_its_reason_and_later_records_flow(
    rig: Rig, stack_settings: Settings
) -> None:
    kafka = KafkaSettings.from_mapping(stack_settings.env)
    poisoned: list[Any] = []
    *files, later = rig.stream  # `later` goes through trialwatch.in.records, behind its poison

    async def strike() -> Fault:
        """Same keys as the records behind it: the study's events partition, and the partition
        `trialwatch send --via kafka` gives ``later`` (keyed by its path)."""
        flight = await rig.probe.in_flight()
        poisoned.extend(await produce(kafka, EVENTS, [POISON], key=b"ANAKINRA-AD"))
        poisoned.extend(await produce(kafka, IN_RECORDS, [POISON], key=str(later).encode()))
        return Fault("poison on trialwatch.events.v1 and trialwatch.in.records", flight, 0.0)

    started, marks = time.monotonic(), rig.pipeline.log_marks()
    fault = await strike_mid_stream(rig.pipeline, rig.probe, files, strike)
    await send(rig.pipeline, [later], "--via", "kafka")
    drain_seconds = await rig.probe.drained(rig.pipeline, DRAIN_SECONDS)
    elapsed = time.monotonic() - started
    figures = await verdict(rig, fault, marks=marks, seconds=elapsed, drain_seconds=drain_seconds)
    letters = {
        (h["x-original-topic"], int(h["x-original-partition"]), int(h["x-original-offset"])): h
        for h in ({k: v.decode() for k, v in r.headers or ()} for r in await rig.probe.read(DEAD_LETTER))
        if "x-original-topic" in h
    }
    found = {meta.topic: letters.get((meta.topic, meta.partition, meta.offset), {}) for meta in poisoned}
    reasons = {topic: letter.get("x-reason", "") for topic, letter in found.items()}
    assert all(reasons.values()) and len(reasons) == 2, f"dead letters of the poison: {reasons}{rig.pipeline.logs()}"
    attempts = {topic: int(letter.get("x-attempts", "0")) for topic, letter in found.items()}
    assert all(1 <= count <= RetryPolicy().max_attempts for count in attempts.values()), f"attempts: {attempts}"
    report("fault_poison", {**figures, "dead_letter_reasons": reasons, "dead_letter_attempts": attempts})
