"""safety_rules live, on the real test Kafka and PostgreSQL, with the service as real subprocesses.

Records are the real parsers' output for hand-written files, published as `RecordIngested` straight
to the events topic (no ingest service involved); the expectation is `trialwatch replay` of the same
files. Each test runs an isolated deployment (own database, topics and consumer group: live_rig.py).
CLOCK-BREACH is compared apart: live, the wall clock raises it (SAFETY_RULES §5).
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner
from safety_rules_service.live_inputs import (
    SAMPLE_FILES,
    STUDY,
    assert_like_replay,
    breaches,
    ingested,
    replay_groups,
    trial_stream,
    wire,
    write_ndjson,
)
from safety_rules_service.live_rig import LiveRules, RulesProcess, create_database, drop_database, read_topic
from safety_rules_service.store_contract import CONTRACT, OpenStore, alt
from sqlalchemy import Connection, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from services.safety_rules.adapters.batch_store import BatchStateStore
from services.safety_rules.adapters.participant_cache import ParticipantCache
from services.safety_rules.adapters.participant_rows import Written
from services.safety_rules.adapters.relay_order import relay_sessions
from services.safety_rules.adapters.state_store import SqlStateStore, lock_study
from services.safety_rules.adapters.tables import Outbox
from services.safety_rules.adapters.tables import ParticipantState as ParticipantRow
from services.safety_rules.domain import ParticipantState, StateStore
from services.safety_rules.domain.state import DoseFact
from shared.events import RecordIngested
from shared.messaging.batch_publisher import EarlierRecordFailedError, KafkaBatchPublisher
from shared.messaging.outbox import Delivery, OutboxMessage, OutboxRelay, Outgoing, PublishResult, enqueue_many
from shared.settings import KafkaSettings
from trialwatch.devstack.settings import Settings
from trialwatch.devstack.topics import TOPICS

pytestmark = pytest.mark.integration

PARTITIONS = {spec.name: spec.partitions for spec in TOPICS}


async def migrated_database(stack_settings: Settings) -> AsyncIterator[str]:
    name = f"it_rules_{uuid.uuid4().hex[:10]}"
    url = await asyncio.to_thread(create_database, stack_settings, name)
    try:
        yield url
    finally:
        await asyncio.to_thread(drop_database, stack_settings, name)


@pytest_asyncio.fixture(loop_scope="session")
async def database(stack_settings: Settings) -> AsyncIterator[str]:
    """A fresh database for one service deployment."""
    async for url in migrated_database(stack_settings):
        yield url


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def adapter_database(stack_settings: Settings) -> AsyncIterator[str]:
    """One database for the adapter tests (each rolls back or uses its own keys)."""
    async for url in migrated_database(stack_settings):
        yield url


@pytest_asyncio.fixture(loop_scope="session")
async def db(database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def live(
    stack_settings: Settings, database: str, kafka_admin_client: AIOKafkaAdminClient, tmp_path: Path
) -> AsyncIterator[LiveRules]:
    rig = LiveRules(stack_settings, database, f"it.{uuid.uuid4().hex[:8]}.", tmp_path)
    names = {rig.topics.events, rig.topics.signals, rig.topics.dead_letter}
    await kafka_admin_client.create_topics([NewTopic(n, PARTITIONS[n.removeprefix(rig.prefix)], 1) for n in names])
    try:
        yield rig
    finally:
        for process in rig.processes:
            process.stop()
        await kafka_admin_client.delete_topics(sorted(names))


def canonical(line: bytes) -> bytes:
    """The same JSON object whatever its key order (the outbox kept payloads as jsonb before migration 0005)."""
    return orjson.dumps(orjson.loads(line), option=orjson.OPT_SORT_KEYS)


async def scalar(db: AsyncEngine, sql: str, **params: object) -> int:
    async with db.connect() as connection:
        return int((await connection.execute(text(sql), params)).scalar_one())


async def wait_processed(live: LiveRules, db: AsyncEngine, count: int) -> None:
    """Until ``count`` records are processed and every signal has left the outbox."""
    processed = "SELECT count(*) FROM safety_rules.processed_event WHERE consumer_group = :group"
    pending = "SELECT count(*) FROM safety_rules.outbox WHERE published_at IS NULL"

    async def done() -> bool:
        return await scalar(db, processed, group=live.group) == count and await scalar(db, pending) == 0

    await live.eventually(done, f"{count} records processed and published")


def metric(process: RulesProcess, name: str, **labels: str) -> float:
    return process.metrics().get((name, tuple(sorted(labels.items()))), 0.0)


def total(process: RulesProcess, name: str, keep: Callable[[dict[str, str]], bool] = lambda _: True) -> float:
    return sum(value for (found, labels), value in process.metrics().items() if found == name and keep(dict(labels)))


async def test_the_live_signals_are_replay_of_the_same_inputs_published_keyed_by_study(
    live: LiveRules, db: AsyncEngine, tmp_path: Path
) -> None:
    inputs = [*SAMPLE_FILES, write_ndjson(tmp_path / "trial.ndjson", trial_stream(40))]
    records = ingested(inputs)
    started = datetime.now(UTC)
    service = live.start()
    await live.publish(wire(records))
    await wait_processed(live, db, len(records))

    signals = live.signals_cli()
    replayed = live.replay_cli(inputs)
    groups = replay_groups(inputs)
    assert len(groups) > 60
    assert_like_replay(signals, groups)
    assert_like_replay(replayed, groups)
    assert breaches(replayed) <= breaches(signals), "the wall clock breaches at least what replay breaches"

    published = await live.read_topic(live.topics.signals, PARTITIONS["trialwatch.signals.v1"])
    assert {record.key for record in published} == {STUDY.encode()}
    assert {canonical(record.value or b"") for record in published} == set(map(canonical, signals))

    assert live.signals_cli("--study", "OTHER-STUDY") == []
    assert live.signals_cli("--since", (datetime.now(UTC) + timedelta(minutes=5)).isoformat()) == []
    assert live.signals_cli("--study", STUDY, "--since", started.isoformat()) == signals

    assert metric(service, "safety_rules_records_total", outcome="processed") == len(records)
    assert total(service, "safety_rules_signals_total") == len(signals)
    breach_count = total(service, "safety_rules_signals_total", lambda labels: labels["rule_id"] == "CLOCK-BREACH")
    assert breach_count == len(breaches(signals))
    assert total(service, "safety_rules_events_total") == sum(len(record.events) for record in records)
    assert metric(service, "safety_rules_processing_latency_seconds_count") == len(records)

    async def lag_is_zero_on_every_partition() -> bool:
        lags = {labels: value for (name, labels), value in service.metrics().items() if name.endswith("consumer_lag")}
        return len(lags) == PARTITIONS["trialwatch.events.v1"] and set(lags.values()) == {0.0}

    await live.eventually(lag_is_zero_on_every_partition, "consumer lag 0 on all six partitions")


async def test_a_redelivered_record_raises_no_second_signal(
    live: LiveRules, db: AsyncEngine, kafka_admin_client: AIOKafkaAdminClient
) -> None:
    records = ingested(SAMPLE_FILES)
    service = live.start()
    await live.publish(wire(records))
    await wait_processed(live, db, len(records))
    before = live.signals_cli()
    later = [record.model_copy(update={"received_at": datetime.now(UTC)}) for record in records]
    offsets = await live.publish(wire(records) + wire(later))  # the same bytes again, then a re-publication

    async def all_acknowledged() -> bool:
        committed = await kafka_admin_client.list_consumer_group_offsets(live.group)
        furthest: int = max(meta.offset for meta in committed.values())
        return furthest > max(offsets)

    await live.eventually(all_acknowledged, "every delivery acknowledged")
    assert live.signals_cli() == before
    assert_like_replay(before, replay_groups(SAMPLE_FILES))
    assert await scalar(db, "SELECT count(*) FROM safety_rules.signal") == len(before)
    assert await scalar(db, "SELECT count(*) FROM safety_rules.outbox") == len(before)
    assert await scalar(db, "SELECT count(*) FROM safety_rules.processed_event") == len(records)
    assert metric(service, "safety_rules_records_total", outcome="duplicate") == 2 * len(records)
    assert service.stop(signal.SIGTERM) in (0, -signal.SIGTERM), "SIGTERM drains and stops cleanly"
    assert '"service.stopped"' in service.log()


def failing_record(template: RecordIngested) -> RecordIngested:
    """A record of the configured study whose events name another one: the engine refuses it every time."""
    changed = {"study_id": "OTHER-STUDY", "dedup_key": "REC:ANAKINRA-AD:DS:ALWAYS-FAILS"}
    events = [event.model_copy(update=changed) for event in template.events]
    return template.model_copy(update={"record_id": "record-that-always-fails", "events": events})


async def test_poison_is_dead_lettered_with_its_reason_and_the_records_behind_it_are_processed(
    live: LiveRules, db: AsyncEngine
) -> None:
    first, *rest = ingested(SAMPLE_FILES)
    other_study = first.model_copy(update={"study_id": "OTHER-STUDY", "record_id": "record-of-other-study"})
    poison = [b"{not json", other_study.model_dump_json().encode(), failing_record(first).model_dump_json().encode()]
    live.start()
    offsets = await live.publish([*wire([first]), *poison, *wire(rest)])
    await wait_processed(live, db, 1 + len(rest))

    assert_like_replay(live.signals_cli(), replay_groups(SAMPLE_FILES))
    dead = await live.read_topic(live.topics.dead_letter, PARTITIONS["trialwatch.dlq.v1"])
    assert [record.value for record in dead] == poison
    headers = [{name: value.decode() for name, value in record.headers} for record in dead]
    assert [h["x-original-offset"] for h in headers] == [str(offset) for offset in offsets[1:4]]
    assert [(h["x-exception"], h["x-attempts"]) for h in headers] == [
        ("ValidationError", "1"),
        ("PoisonMessageError", "1"),
        ("ValueError", "3"),
    ]
    assert "'OTHER-STUDY' is not configured" in headers[1]["x-reason"]
    assert "belongs to study OTHER-STUDY" in headers[2]["x-reason"]
    assert {h["x-original-topic"] for h in headers} == {live.topics.events}
    assert {h["x-consumer-group"] for h in headers} == {live.group}
    retries = [line for line in live.processes[0].log().splitlines() if '"consume.retrying"' in line]
    assert len(retries) == 2, "three attempts with a backoff between them, then the dead letter"


async def processed(db: AsyncEngine, live: LiveRules) -> int:
    return await scalar(db, "SELECT count(*) FROM safety_rules.processed_event WHERE consumer_group = :g", g=live.group)


async def busiest(processes: list[RulesProcess]) -> RulesProcess:
    """The instance that is consuming the study's partition right now (its record count moves)."""
    while True:
        before = [metric(p, "safety_rules_records_total", outcome="processed") for p in processes]
        await asyncio.sleep(0.3)
        after = [metric(p, "safety_rules_records_total", outcome="processed") for p in processes]
        moving = [p for p, old, new in zip(processes, before, after, strict=True) if new > old]
        if len(moving) == 1:
            return moving[0]


async def test_two_instances_in_one_group_give_replay_even_when_one_joins_and_one_is_killed_mid_stream(
    live: LiveRules, db: AsyncEngine, tmp_path: Path
) -> None:
    """The stream trickles in while the second instance joins and while the owner is killed, so both land
    mid-stream however fast a batch is processed."""
    inputs = [write_ndjson(tmp_path / "trial.ndjson", trial_stream(60))]
    records = ingested(inputs)
    values, head = wire(records), len(records) // 5
    first = live.start()
    await live.publish(values[:head])
    await live.eventually(lambda: at_least(db, live, head // 2), "a tenth processed by the first instance")
    stop = asyncio.Event()
    trickling = asyncio.create_task(live.trickle(values[head:], stop, per_second=5))
    second = await asyncio.to_thread(live.start)  # joins mid-stream: a rebalance while the first is writing
    owner = await asyncio.wait_for(busiest([first, second]), timeout=30)
    owner.stop(signal.SIGKILL)
    done_at_kill = await processed(db, live)
    stop.set()
    sent = await trickling
    assert done_at_kill < len(records) and head + sent < len(records), "the kill must land mid-stream"
    await live.publish(values[head + sent :])

    await wait_processed(live, db, len(records))
    signals = live.signals_cli()
    assert_like_replay(signals, replay_groups(inputs))
    assert breaches(live.replay_cli(inputs)) <= breaches(signals)
    assert await scalar(db, "SELECT count(*) FROM safety_rules.signal") == len(signals)
    survivor = second if owner is first else first
    assert survivor.process.poll() is None


async def at_least(db: AsyncEngine, live: LiveRules, count: int) -> bool:
    return await processed(db, live) >= count


async def test_the_wall_clock_raises_clock_breach_without_any_later_record(
    live: LiveRules, db: AsyncEngine, tmp_path: Path
) -> None:
    received = datetime.now(UTC) - timedelta(hours=24, seconds=30)  # SPONSOR-24H due 30 s ago
    sae = {"DOMAIN": "AE", "STUDYID": STUDY, "USUBJID": "AD-900", "RECID": "AE-900-1", "AETERM": "fall"}
    sae |= {"AESER": "Y", "AESHOSP": "Y", "AEREL": "NOT RELATED", "AESTDTC": received.date().isoformat()}
    sae["RECEIVEDDTC"] = received.isoformat().replace("+00:00", "Z")
    inputs = [write_ndjson(tmp_path / "sae.ndjson", [sae])]
    records = ingested(inputs)
    service = live.start()
    await live.publish(wire(records))
    await wait_processed(live, db, 1)

    async def breached() -> bool:
        return await scalar(db, "SELECT count(*) FROM safety_rules.signal WHERE rule_id = 'CLOCK-BREACH'") > 0

    await live.eventually(breached, "CLOCK-BREACH from the wall clock", seconds=30)
    signals = live.signals_cli()
    [breach] = [orjson.loads(line) for line in breaches(signals)]
    [sponsor] = [orjson.loads(line) for line in signals if b'"rule_id":"SPONSOR-24H"' in line]
    assert (breach["detail"]["clock_signal_id"], breach["due_at"]) == (sponsor["signal_id"], sponsor["due_at"])
    assert breaches(live.replay_cli(inputs)) == set(), "replay has no later record to move its clock"
    assert_like_replay(signals, replay_groups(inputs))
    assert metric(service, "safety_rules_signals_total", rule_id="CLOCK-BREACH", severity="URGENT") == 1
    published = await live.read_topic(live.topics.signals, PARTITIONS["trialwatch.signals.v1"])
    assert breach["signal_id"] in {orjson.loads(record.value or b"")["signal_id"] for record in published}


@pytest.mark.parametrize("check", CONTRACT, ids=lambda check: check.__name__)
async def test_sql_state_store_meets_the_store_contract(
    adapter_database: str, check: Callable[[OpenStore], None]
) -> None:
    """The checks the in-memory store passes (tests/safety_rules_service), on PostgreSQL rows."""
    engine = create_async_engine(adapter_database)
    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            await connection.run_sync(lambda sync: check(lambda: SqlStateStore(sync)))
            await transaction.rollback()
    finally:
        await engine.dispose()


@pytest.mark.parametrize("cached", [False, True], ids=["uncached", "cached"])
@pytest.mark.parametrize("check", CONTRACT, ids=lambda check: check.__name__)
async def test_batch_state_store_meets_the_store_contract_through_its_flush(
    adapter_database: str, check: Callable[[OpenStore], None], cached: bool
) -> None:
    """Each view is a new `BatchStateStore` on the same transaction, opened after the previous one was
    flushed: what a batch saved, the next batch reads back from PostgreSQL (or, cached, takes from the
    participant cache while the row is the one it wrote)."""
    engine = create_async_engine(adapter_database)
    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            cache = ParticipantCache(100) if cached else None
            await connection.run_sync(lambda sync: check(batch_views(sync, cache)))
            await transaction.rollback()
    finally:
        await engine.dispose()


def batch_views(connection: Connection, cache: ParticipantCache | None = None) -> OpenStore:
    views: list[BatchStateStore] = []

    def open_store() -> StateStore:
        if views:
            views[-1].flush()
        views.append(BatchStateStore(connection, cache=cache))
        return views[-1]

    return open_store


async def test_a_batch_state_store_reads_the_rows_of_its_records_up_front(adapter_database: str) -> None:
    saved = ParticipantState("AD-PREFETCH", specimens={"SPC": {"NEUT": "k"}})
    engine = create_async_engine(adapter_database)
    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            await connection.run_sync(lambda sync: SqlStateStore(sync).save_participant("PREFETCH", saved))
            await connection.run_sync(lambda sync: SqlStateStore(sync).mark_processed("REC:PREFETCH:1"))
            store = await connection.run_sync(lambda sync: prefetched(sync, ["AD-PREFETCH", "AD-NEW"]))
            await transaction.rollback()
    finally:
        await engine.dispose()
    loaded = store.load_participant("PREFETCH", "AD-PREFETCH")  # the connection is gone: no query any more
    assert loaded is not None and loaded.to_json() == saved.to_json()
    assert store.load_participant("PREFETCH", "AD-NEW") is None
    assert store.is_processed("REC:PREFETCH:1") and not store.is_processed("REC:PREFETCH:2")


def prefetched(
    connection: Connection, subjects: list[str], cache: ParticipantCache | None = None, study: str = "PREFETCH"
) -> BatchStateStore:
    store = BatchStateStore(connection, cache=cache)
    store.prefetch(study, subjects, ["REC:PREFETCH:1", "REC:PREFETCH:2"])
    return store


async def test_the_study_lock_makes_a_second_writer_wait_for_the_first(adapter_database: str) -> None:
    engine = create_async_engine(adapter_database)
    sessions = async_sessionmaker(engine)
    try:
        async with sessions.begin() as holder:
            await lock_study(holder, "LOCK-STUDY")  # first use: the row is created, then locked
            waiter = asyncio.create_task(locked_after(sessions, "LOCK-STUDY"))
            await asyncio.sleep(0.5)
            assert not waiter.done(), "a second transaction must wait for the study lock"
        await asyncio.wait_for(waiter, timeout=10)
    finally:
        await engine.dispose()


async def test_outbox_relays_of_two_instances_take_turns(adapter_database: str) -> None:
    """Relay transactions serialize on one advisory lock, so one study's signals leave in order."""
    engine = create_async_engine(adapter_database)
    sessions = relay_sessions(engine)
    try:
        async with sessions.begin() as first:
            await first.execute(text("SELECT 1"))
            second = asyncio.create_task(relay_round(sessions))
            await asyncio.sleep(0.5)
            assert not second.done(), "the second relay must wait for the first round to commit"
        await asyncio.wait_for(second, timeout=10)
    finally:
        await engine.dispose()


async def locked_after(sessions: async_sessionmaker[AsyncSession], study_id: str) -> None:
    async with sessions.begin() as session:
        await lock_study(session, study_id)


async def relay_round(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions.begin() as session:
        await session.execute(text("SELECT 1"))


# --- participant cache: a state kept between batches only while its row is the one this service wrote ---


async def test_a_cached_state_is_taken_only_while_its_row_is_unchanged(adapter_database: str) -> None:
    cache = ParticipantCache(10)
    mine = ParticipantState("AD-CACHE", specimens={"SPC-1": {"NEUT": "mine"}})
    theirs = ParticipantState("AD-CACHE", specimens={"SPC-1": {"NEUT": "theirs"}})
    engine = create_async_engine(adapter_database)
    try:
        async with engine.connect() as connection:  # autobegins; each commit ends one transaction
            await connection.run_sync(lambda sync: saved_through(sync, cache, mine))
            assert len(cache) == 1
            again = await connection.run_sync(lambda sync: prefetched(sync, ["AD-CACHE"], cache, "CACHE"))
            assert again.load_participant("CACHE", "AD-CACHE") is mine, "unchanged row: the cached object"
            assert len(cache) == 0, "the batch owns the object until it writes it back"
            await connection.run_sync(lambda sync: saved_through(sync, cache, mine))
            await connection.commit()  # another transaction writes the row next: a new xmin
            await connection.run_sync(lambda sync: SqlStateStore(sync).save_participant("CACHE", theirs))
            await connection.commit()
            after = await connection.run_sync(lambda sync: prefetched(sync, ["AD-CACHE"], cache, "CACHE"))
            reread = after.load_participant("CACHE", "AD-CACHE")
            assert reread is not mine and reread is not None
            assert reread.to_json() == theirs.to_json(), "a row another writer changed is read again"
            await connection.execute(text("DELETE FROM safety_rules.participant_state WHERE study_id = 'CACHE'"))
            await connection.commit()
    finally:
        await engine.dispose()


def saved_through(connection: Connection, cache: ParticipantCache, state: ParticipantState) -> None:
    store = BatchStateStore(connection, cache=cache)
    store.save_participant("CACHE", state)
    store.flush()


async def test_a_batch_appends_one_row_of_its_new_results_and_older_rows_still_read(
    adapter_database: str,
) -> None:
    """A state row written before migration 0007 holds its results in its JSON: it reads as it is and its
    results become rows at its next write; after that a batch appends one row with its new results only.
    Rows of one result each (0007-0008) read in their seq order, and chunks follow them."""
    before = ParticipantState("AD-ROWS", results={key: alt(key, "10") for key in "AB"})
    rows = "SELECT seq, value::text, xmin::text FROM safety_rules.participant_result WHERE study_id = 'ROWS'"
    engine = create_async_engine(adapter_database)
    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            await connection.execute(
                ParticipantRow.__table__.insert().values(study_id="ROWS", subject_id="AD-ROWS", state=before.to_json())
            )
            await connection.run_sync(lambda sync: with_result(sync, "C"))
            state = (await connection.execute(text("SELECT state FROM safety_rules.participant_state"))).scalar_one()
            assert state["results"] == [], "the results left the state row"
            first = (await connection.execute(text(rows + " ORDER BY seq"))).all()
            assert [(seq, keys_of(value)) for seq, value, _ in first] == [(0, ["A", "B", "C"])]
            await transaction.commit()
            await connection.run_sync(lambda sync: with_result(sync, "D", "E"))
            second = (await connection.execute(text(rows + " ORDER BY seq"))).all()
            assert second[:1] == first, "the row of unchanged results is not written again"
            assert [(seq, keys_of(value)) for seq, value, _ in second[1:]] == [(1, ["D", "E"])]
            await connection.execute(text("DELETE FROM safety_rules.participant_result WHERE study_id = 'ROWS'"))
            old_rows = [
                {"s": "ROWS", "p": "AD-ROWS", "q": seq, "v": orjson.dumps(alt(key, "9").to_json()).decode()}
                for seq, key in enumerate("DAB")
            ]
            insert = "INSERT INTO safety_rules.participant_result VALUES (:s, :p, :q, CAST(:v AS json))"
            await connection.execute(text(insert), old_rows)
            await connection.commit()
            reread = await connection.run_sync(lambda sync: with_result(sync, "A", "F"))
            assert list(reread.results) == ["D", "A", "B", "F"], "0007's rows in seq order, A changed in place"
            assert reread.results["A"] == alt("A", "12") and reread.results["B"] == alt("B", "9")
            third = (await connection.execute(text(rows + " ORDER BY seq"))).all()
            assert [(seq, keys_of(value)) for seq, value, _ in third[3:]] == [(3, ["A", "F"])]
            again = await connection.run_sync(with_result)
            assert again.results == reread.results and list(again.results) == list(reread.results)
            await connection.execute(text("DELETE FROM safety_rules.participant_result WHERE study_id = 'ROWS'"))
            await connection.execute(text("DELETE FROM safety_rules.participant_state WHERE study_id = 'ROWS'"))
            await connection.commit()
    finally:
        await engine.dispose()


async def test_the_facts_column_is_written_only_when_the_facts_changed_and_reads_back_either_way(
    adapter_database: str,
) -> None:
    """Migration 0009: a batch that changes no adverse event, reaction or dose sends NULL for ``facts`` and
    the row keeps them; a state written whole by `SqlStateStore` (``facts`` NULL) reads back whole."""
    sent: list[object] = []
    cache = ParticipantCache(10)
    dose = DoseFact(datetime(2026, 1, 5, 8, tzinfo=UTC), True, "REC:EX:1")
    engine = create_async_engine(adapter_database)
    try:
        async with engine.connect() as connection:
            sync_connection = await connection.run_sync(lambda sync: sync)
            event.listen(sync_connection, "before_cursor_execute", facts_sent(sent))
            state = ParticipantState("AD-FACTS")
            state.record_dose(dose)
            await connection.run_sync(lambda sync: flushed(sync, cache, state))
            await connection.commit()
            assert sent == [
                ['{"adverse_events":[],"injection_sites":[],"doses":[' + orjson.dumps(dose).decode() + "]}"]
            ]
            cached = await connection.run_sync(lambda sync: flushed(sync, cache, None, "K1"))
            await connection.commit()
            assert cached is state and sent[-1] == [None], "unchanged facts: NULL, the row keeps them"
            reread = await connection.run_sync(lambda sync: flushed(sync, None, None))
            assert reread.doses == {"REC:EX:1": dose} and list(reread.results) == ["K1"]
            await connection.run_sync(lambda sync: SqlStateStore(sync).save_participant("FACTS", reread))
            await connection.commit()
            whole = (await connection.execute(text("SELECT state, facts FROM safety_rules.participant_state"))).one()
            assert whole.facts is None and whole.state["doses"] == [orjson.loads(orjson.dumps(dose))]
            again = await connection.run_sync(lambda sync: flushed(sync, None, None))
            assert again.doses == {"REC:EX:1": dose} and sent[-1] != [None], "read from state: written again"
            await connection.execute(text("DELETE FROM safety_rules.participant_result WHERE study_id = 'FACTS'"))
            await connection.execute(text("DELETE FROM safety_rules.participant_state WHERE study_id = 'FACTS'"))
            await connection.commit()
    finally:
        await engine.dispose()


def facts_sent(sent: list[object]) -> Callable[..., None]:
    """A ``before_cursor_execute`` listener noting the ``facts`` array of each state upsert."""

    def note(_conn: object, _cursor: object, statement: str, parameters: Sequence[object], *_: object) -> None:
        if statement.startswith("INSERT INTO safety_rules.participant_state AS p"):
            sent.append(parameters[3])

    return note


def flushed(
    connection: Connection, cache: ParticipantCache | None, state: ParticipantState | None, *keys: str
) -> ParticipantState:
    """``state`` saved (None: the one read, with results ``keys`` added) through a batch store."""
    store = BatchStateStore(connection, cache=cache)
    store.prefetch("FACTS", ["AD-FACTS"], [])
    if state is None:
        state = store.load_participant("FACTS", "AD-FACTS")
        assert state is not None
    for key in keys:
        state.results[key] = alt(key, "12")
    store.save_participant("FACTS", state)
    store.flush()
    return state


def keys_of(value: str) -> list[str]:
    """The result keys a chunk row sets, in its order."""
    return [entry[0] for entry in orjson.loads(value)]


def with_result(connection: Connection, *keys: str) -> ParticipantState:
    """Reads the participant (from its rows: no cache), sets results ``keys`` and writes it."""
    store = BatchStateStore(connection)
    store.prefetch("ROWS", ["AD-ROWS"], [])
    state = store.load_participant("ROWS", "AD-ROWS")
    assert state is not None
    for key in keys:
        state.results[key] = alt(key, "12")
    store.save_participant("ROWS", state)
    store.flush()
    return state


def test_the_participant_cache_drops_the_least_recently_written_beyond_its_size() -> None:
    cache = ParticipantCache(2)
    states = {name: ParticipantState(name) for name in ("AD-1", "AD-2", "AD-3")}
    for name, state in states.items():
        cache.put(("S", name), "100", state, Written({}))
    assert len(cache) == 2
    assert cache.take(("S", "AD-1"), "100") is None
    assert cache.take(("S", "AD-2"), "101") is None, "another xmin: not the row the state was written to"
    taken = cache.take(("S", "AD-3"), "100")
    assert taken is not None and taken[0] is states["AD-3"]
    assert len(cache) == 0


# --- outbox relay and batch publisher (shared.messaging), on safety_rules' outbox table and real Kafka ---


class ScriptedPublisher:
    """Delivers every record, except that the record at ``fail_at`` of the next round fails (and, as the
    contract allows, those after it are not reported delivered)."""

    def __init__(self) -> None:
        self.rounds: list[list[str]] = []
        self.fail_at: int | None = None

    async def publish(self, messages: Sequence[Outgoing]) -> list[PublishResult]:
        self.rounds.append([dict(message.headers)["event_id"] for message in messages])
        results: list[PublishResult] = []
        for index, message in enumerate(messages):
            if index == self.fail_at:
                self.fail_at = None
                return [*results, ConnectionError("broker away")]
            results.append(Delivery(message.topic, 0, index))
        return results

    async def close(self) -> None:
        pass


async def test_the_relay_marks_the_rows_before_the_first_failure_and_resumes_in_order(adapter_database: str) -> None:
    engine = create_async_engine(adapter_database)
    sessions = relay_sessions(engine)
    ids = [f"relay-order-{uuid.uuid4().hex[:8]}-{n}" for n in range(5)]
    publisher = ScriptedPublisher()
    relay = OutboxRelay(sessions, Outbox, publisher, batch_size=10)
    try:
        async with sessions.begin() as session:
            await session.execute(text("DELETE FROM safety_rules.outbox"))
            messages = [OutboxMessage(event_id, "it.relay", "STUDY-R", {"n": n}) for n, event_id in enumerate(ids)]
            await enqueue_many(session, Outbox, messages)
        publisher.fail_at = 2
        with pytest.raises(ConnectionError):
            await relay.publish_pending()
        state = "SELECT event_id, published_at IS NOT NULL, attempts, last_error FROM safety_rules.outbox ORDER BY id"
        async with engine.connect() as connection:
            rows = (await connection.execute(text(state))).all()
        assert [(row[0], row[1], row[2]) for row in rows] == [
            (ids[0], True, 0),
            (ids[1], True, 0),
            (ids[2], False, 1),
            (ids[3], False, 0),
            (ids[4], False, 0),
        ]
        assert rows[2][3] == "ConnectionError: broker away"
        assert await relay.publish_pending() == 3
        assert publisher.rounds == [ids, ids[2:]], "the failed row first, then the rows after it, in order"
        assert await relay.publish_pending() == 0
    finally:
        await engine.dispose()


async def test_a_woken_relay_publishes_a_committed_row_at_once_not_at_its_next_poll(
    adapter_database: str, stack_settings: Settings, new_topic: Callable[..., Awaitable[str]]
) -> None:
    """The writer's commit wakes the relay (``on_commit=relay.wake`` in both services): a row is on Kafka
    within a fraction of a second. Polling is only the fallback for rows a crash left (here every 60 s)."""
    topic = await new_topic(partitions=1)
    kafka = KafkaSettings.from_mapping(stack_settings.env)
    engine = create_async_engine(adapter_database)
    sessions = relay_sessions(engine)
    relay = OutboxRelay(sessions, Outbox, KafkaBatchPublisher(kafka, client_id="it-relay-wake"), poll_interval=60.0)
    async with sessions.begin() as session:
        await session.execute(text("DELETE FROM safety_rules.outbox"))
    running = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.5)  # the relay found nothing and waits for its next poll
        not_woken = await committed_row(sessions, topic)
        await asyncio.sleep(1.0)
        assert await published_at(engine, not_woken) is None, "without a wake-up the row waits for the poll"
        woken = await committed_row(sessions, topic)
        started = asyncio.get_running_loop().time()
        relay.wake()
        while await published_at(engine, woken) is None:
            assert asyncio.get_running_loop().time() - started < 2.0, "woken: published within 2 s, not 60 s"
            await asyncio.sleep(0.01)
        records = await read_topic(kafka, topic, 1)
        assert [dict(record.headers)["event_id"].decode() for record in records] == [not_woken, woken]
    finally:
        relay.stop()
        await asyncio.wait_for(running, timeout=10)
        await relay.close()
        await engine.dispose()


async def committed_row(sessions: async_sessionmaker[AsyncSession], topic: str) -> str:
    event_id = f"relay-wake-{uuid.uuid4().hex[:8]}"
    async with sessions.begin() as session:
        await enqueue_many(session, Outbox, [OutboxMessage(event_id, topic, "STUDY-W", {"id": event_id})])
    return event_id


async def published_at(engine: AsyncEngine, event_id: str) -> datetime | None:
    query = text("SELECT published_at FROM safety_rules.outbox WHERE event_id = :id")
    async with engine.connect() as connection:
        found: datetime | None = (await connection.execute(query, {"id": event_id})).scalar_one()
        return found


async def test_the_batch_publisher_keeps_each_partitions_order_and_the_headers(
    stack_settings: Settings, new_topic: Callable[..., Awaitable[str]]
) -> None:
    topic = await new_topic(partitions=3)
    kafka = KafkaSettings.from_mapping(stack_settings.env)
    publisher = KafkaBatchPublisher(kafka, client_id="it-batch-publisher", max_batch_bytes=4096)
    keys = [f"STUDY-{n}".encode() for n in range(4)]
    messages = [
        Outgoing(topic, keys[n % 4], orjson.dumps({"n": n, "pad": "x" * 300}), {"event_id": f"e-{n}"})
        for n in range(200)
    ]
    try:
        results = await publisher.publish(messages)
    finally:
        await publisher.close()
    assert all(isinstance(result, Delivery) for result in results)
    found = await read_topic(kafka, topic, 3)
    assert len(found) == 200
    for key in keys:
        mine = [record for record in found if record.key == key]
        assert [orjson.loads(record.value or b"")["n"] for record in sorted(mine, key=lambda r: r.offset)] == [
            n for n in range(200) if keys[n % 4] == key
        ]
    by_event = {dict(record.headers)["event_id"].decode(): record for record in found}
    for message, result in zip(messages, results, strict=True):
        record = by_event[message.headers["event_id"]]
        assert isinstance(result, Delivery)
        assert (record.partition, record.offset) == (result.partition, result.offset)


async def test_after_a_failed_record_batch_nothing_later_of_its_partition_is_sent(
    stack_settings: Settings, new_topic: Callable[..., Awaitable[str]]
) -> None:
    """The topic refuses record batches over 8 kB: the oversized record (alone in its batch: batches of at
    most 16 kB) fails; the record after it on the same partition is not sent (it would overtake it); the
    other partition's records all arrive."""
    topic = await new_topic(partitions=2, **{"max.message.bytes": "8192"})
    kafka = KafkaSettings.from_mapping(stack_settings.env)
    publisher = KafkaBatchPublisher(kafka, client_id="it-batch-publisher", max_batch_bytes=16 * 1024)
    first, second = await keys_on_two_partitions(kafka, topic)
    small = orjson.dumps({"pad": "x" * 100})
    messages = [Outgoing(topic, first, small, {"event_id": "before"})]
    messages += [Outgoing(topic, second, small, {"event_id": f"other-{n}"}) for n in range(3)]
    messages += [Outgoing(topic, first, b"y" * 20_000, {"event_id": "oversized"})]
    messages += [Outgoing(topic, first, small, {"event_id": "after"})]
    try:
        assert isinstance((await publisher.publish(messages[:1]))[0], Delivery)  # alone in its batch
        results = await publisher.publish(messages[1:])
        [again] = await publisher.publish([Outgoing(topic, first, small, {"event_id": "next round"})])
    finally:
        await publisher.close()
    assert isinstance(again, Delivery), "the round after a failure publishes (on a new producer)"
    assert [type(result).__name__ for result in results] == [
        "Delivery",
        "Delivery",
        "Delivery",
        type(results[3]).__name__,
        "EarlierRecordFailedError",
    ]
    assert isinstance(results[3], Exception) and not isinstance(results[3], EarlierRecordFailedError)
    found = await read_topic(kafka, topic, 2)
    assert sorted(dict(record.headers)["event_id"].decode() for record in found) == [
        "before",
        "next round",
        "other-0",
        "other-1",
        "other-2",
    ]


async def keys_on_two_partitions(kafka: KafkaSettings, topic: str) -> tuple[bytes, bytes]:
    """Two keys that the default partitioner puts on partitions 0 and 1 of ``topic``."""
    partitioner = DefaultPartitioner()
    found: dict[int, bytes] = {}
    for n in range(100):
        key = f"KEY-{n}".encode()
        found.setdefault(partitioner(key, [0, 1], [0, 1]), key)
    return found[0], found[1]
