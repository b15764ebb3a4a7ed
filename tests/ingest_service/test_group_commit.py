"""Group commit (in-memory store): batches that arrive while a transaction is written share the next one,
every sender is answered only after its commit, and a failure is confined as the module promises."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ingest_service.builders import MemoryStore, MemoryWriter, memory_ingestion, oru
from services.ingest.batch import Accepted, Batch, Outcome, Refused
from services.ingest.handlers import Ingestion
from services.ingest.ports import StorageUnavailableError
from services.ingest.units import hl7_units


class GatedStore(MemoryStore):
    """The first transaction holds until ``opened``; ``refused`` keys make a write fail (not as 'away')."""

    def __init__(self) -> None:
        super().__init__()
        self.opened = asyncio.Event()
        self.held = asyncio.Event()
        self.refused: set[str] = set()
        self.away_after_first = False
        self.groups: list[int] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryWriter]:
        if not self.held.is_set():
            self.held.set()
            await self.opened.wait()
        writer = RefusingWriter(self)
        yield writer
        self.groups.append(writer.batches)
        self.keys |= writer.new
        self.commits += 1


class RefusingWriter(MemoryWriter):
    def __init__(self, store: GatedStore) -> None:
        super().__init__(store)
        self._refused = store.refused
        self._away = store.away_after_first and store.commits >= 1
        self.batches = 0

    async def write(self, batch: Batch) -> set[str]:
        if self._away:
            raise StorageUnavailableError("database away")
        if any(row.key in self._refused for row in batch.records):
            raise ValueError("the database refuses this batch")
        self.batches += 1
        return await super().write(batch)


def send(ingestion: Ingestion, *messages: bytes) -> asyncio.Task[list[Outcome]]:
    units = [unit for index, message in enumerate(messages) for unit in hl7_units(message, f"m{index}")]
    return asyncio.create_task(ingestion.ingest(units, "hl7v2", "mllp"))


async def held_then_queued(
    store: GatedStore, ingestion: Ingestion, *bursts: bytes
) -> list[asyncio.Task[list[Outcome]]]:
    """The first burst's transaction is held open; the others arrive meanwhile."""
    first = send(ingestion, bursts[0])
    await store.held.wait()
    queued = [send(ingestion, burst) for burst in bursts[1:]]
    await asyncio.sleep(0.01)  # every queued burst parsed and waiting for the committer
    return [first, *queued]


async def test_bursts_arriving_during_a_commit_share_the_next_transaction_and_wait_for_it() -> None:
    store = GatedStore()
    ingestion, _ = memory_ingestion(store)
    tasks = await held_then_queued(store, ingestion, oru("G-1"), oru("G-2"), oru("G-3"), oru("G-4"))
    assert not any(task.done() for task in tasks), "no sender is answered before its batch is committed"
    store.opened.set()
    outcomes = await asyncio.gather(*tasks)
    assert [o for burst in outcomes for o in burst] == [Accepted("m0:1", f"HL7:NIHCC-LAB:G-{n}") for n in range(1, 5)]
    assert store.groups == [1, 3], "the three bursts queued behind the first one share one transaction"
    assert store.keys == {f"HL7:NIHCC-LAB:G-{n}" for n in range(1, 5)}


async def test_a_record_in_two_batches_of_one_group_is_new_once_and_a_duplicate_once() -> None:
    store = GatedStore()
    ingestion, _ = memory_ingestion(store)
    tasks = await held_then_queued(store, ingestion, oru("G-0"), oru("G-1"), oru("G-1", value="0.9"))
    store.opened.set()
    _, [first], [second] = await asyncio.gather(*tasks)
    assert first == Accepted("m0:1", "HL7:NIHCC-LAB:G-1")
    assert second == Accepted("m0:1", "HL7:NIHCC-LAB:G-1", duplicate=True), "acknowledged, not published again"
    assert store.groups == [1, 2]


async def test_the_database_away_fails_every_batch_of_the_group_and_stores_nothing() -> None:
    store = GatedStore()
    ingestion, _ = memory_ingestion(store)
    tasks = await held_then_queued(store, ingestion, oru("G-1"), oru("G-2"), oru("G-3"))
    store.away_after_first = True
    store.opened.set()
    first, *queued = await asyncio.gather(*tasks, return_exceptions=True)
    assert first == [Accepted("m0:1", "HL7:NIHCC-LAB:G-1")]
    assert all(isinstance(result, StorageUnavailableError) for result in queued)
    assert store.keys == {"HL7:NIHCC-LAB:G-1"}


async def test_a_batch_the_database_refuses_fails_alone_and_its_group_is_committed() -> None:
    store = GatedStore()
    ingestion, _ = memory_ingestion(store)
    store.refused = {"HL7:NIHCC-LAB:BAD"}
    tasks = await held_then_queued(store, ingestion, oru("G-1"), oru("G-2"), oru("BAD"), oru("G-3"))
    store.opened.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert isinstance(results[2], ValueError)
    assert [results[i] for i in (0, 1, 3)] == [[Accepted("m0:1", f"HL7:NIHCC-LAB:G-{n}")] for n in (1, 2, 3)]
    assert store.keys == {"HL7:NIHCC-LAB:G-1", "HL7:NIHCC-LAB:G-2", "HL7:NIHCC-LAB:G-3"}


async def test_a_burst_of_only_rejected_messages_is_quarantined_through_the_group() -> None:
    store = MemoryStore()
    ingestion, _ = memory_ingestion(store)
    [refused] = await send(ingestion, oru("G-1", pid3=""))
    assert isinstance(refused, Refused)
    assert [len(batch.quarantine) for batch in store.batches] == [1]
    assert store.commits == 1


async def test_an_empty_input_touches_no_transaction() -> None:
    store = MemoryStore()
    ingestion, _ = memory_ingestion(store)
    assert await ingestion.ingest([], "hl7v2", "mllp") == []
    assert store.commits == 0
