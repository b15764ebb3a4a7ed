"""ingest's store against the real test PostgreSQL: a batch is one transaction, all of it or nothing.

Its statements go to the asyncpg connection directly (COPY, array parameters); SQLAlchemy's adapter sends
BEGIN only before a statement of its own, so without a transaction opened on that connection each
statement committed alone, and a failure after the ledger insert left a record "seen" (a re-send
acknowledged as a duplicate) that was never published.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from harness import migrate, scalar
from sqlalchemy.ext.asyncio import create_async_engine

from services.ingest.adapters.store import IngestStore
from services.ingest.batch import Arrival, Batch, build_batch
from services.ingest.domain import ParserConfig
from services.ingest.handlers import parse_units
from services.ingest.units import hl7_units
from shared.db import create_session_factory

pytestmark = pytest.mark.integration

STUDY = "ANAKINRA-AD"


def oru(control: str) -> bytes:
    segments = [
        f"MSH|^~\\&|LIS|ATOMIC-LAB|TRIALWATCH|NIAID|20260302081500||ORU^R01^ORU_R01|{control}|P|2.5.1",
        f"PID|1||AD-001^^^{STUDY}^SUBJ",
        f"OBR|1|PL-{control}|FO-{control}^LIS|57021-8^CBC^LN|||20260302080000",
        "OBX|1|NM|751-8^Neutrophils^LN||0.8|10*9/L|1.8-8.0|L|||F",
    ]
    return ("\r".join(segments) + "\r").encode()


async def test_a_batch_that_fails_after_its_ledger_insert_leaves_nothing_behind(database_url: str) -> None:
    migrate(database_url)
    engine = create_async_engine(database_url)
    commits: list[int] = []
    store = IngestStore(create_session_factory(engine), on_commit=lambda committed: commits.append(len(committed)))
    control = f"ATOMIC-{uuid.uuid4().hex[:12]}"
    config = ParserConfig(frozenset({STUDY}), STUDY)
    now = datetime.now(UTC)
    parsed = parse_units(list(hl7_units(oru(control), "atomic")), "hl7v2", config, now)
    batch, _ = build_batch(parsed, Arrival("mllp", "hl7v2", now, STUDY), set())
    key = f"HL7:ATOMIC-LAB:{control}"
    try:
        with pytest.raises(RuntimeError, match="after the ledger"):
            async with store.transaction() as writer:
                assert await writer.write(batch) == {key}
                raise RuntimeError("fails after the ledger, the events and the outbox row were written")
        ledger = "SELECT count(*) FROM ingest.raw_input WHERE source_key = :key"
        assert await scalar(engine, ledger, key=key) == 0, "the ledger row was committed without its outbox row"
        outbox = "SELECT count(*) FROM ingest.outbox WHERE source_key = :key"
        assert await scalar(engine, outbox, key=key) == 0
        assert commits == []
        async with store.transaction() as writer:
            assert await writer.write(batch) == {key}, "the record is new again: nothing of it was kept"
        assert await scalar(engine, ledger, key=key) == 1
        assert await scalar(engine, outbox, key=key) == 1
        events = "SELECT count(*) FROM ingest.canonical_event WHERE dedup_key = :key"
        assert await scalar(engine, events, key=key) == 1
        assert commits == [1]
    finally:
        await engine.dispose()


async def test_batches_of_one_transaction_are_copied_in_together_in_their_order(database_url: str) -> None:
    """The writer copies the rows of all its batches in at the commit: a key repeated by a later batch of the
    same transaction is a duplicate there (no second event or outbox row), and the outbox keeps the order."""
    migrate(database_url)
    engine = create_async_engine(database_url)
    commits: list[list[str]] = []
    store = IngestStore(
        create_session_factory(engine), on_commit=lambda committed: commits.append([c[0] for c in committed])
    )
    run = uuid.uuid4().hex[:10]
    config = ParserConfig(frozenset({STUDY}), STUDY)
    now = datetime.now(UTC)

    def batch_of(*controls: str) -> Batch:
        units = [unit for control in controls for unit in hl7_units(oru(control), "group")]
        batch, _ = build_batch(parse_units(units, "hl7v2", config, now), Arrival("mllp", "hl7v2", now, STUDY), set())
        return batch

    first, second = batch_of(f"G-{run}-1", f"G-{run}-2"), batch_of(f"G-{run}-2", f"G-{run}-3")
    key = f"HL7:ATOMIC-LAB:G-{run}-"
    try:
        async with store.transaction() as writer:
            assert await writer.write(first) == {key + "1", key + "2"}
            assert await writer.write(second) == {key + "3"}  # -2 was written by the first batch
            outbox = "SELECT count(*) FROM ingest.outbox WHERE source_key LIKE :key"
            assert await scalar(engine, outbox, key=key + "%") == 0  # another connection: nothing committed yet
        ordered = await scalar(
            engine,
            "SELECT string_agg(source_key, ',' ORDER BY id) FROM ingest.outbox WHERE source_key LIKE :key",
            key=key + "%",
        )
        assert ordered == f"{key}1,{key}2,{key}3"
        events = "SELECT count(*) FROM ingest.canonical_event WHERE dedup_key LIKE :key"
        assert await scalar(engine, events, key=key + "%") == 3  # one result each, -2 once
        assert len(commits) == 1 and len(commits[0]) == 3
    finally:
        await engine.dispose()
