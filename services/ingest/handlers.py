"""The ingest use case: parse a batch of source units, store it in one transaction, answer per record.

Every channel (MLLP, HTTP, Kafka) calls `Ingestion.ingest` with the units of one request, one burst
of MLLP messages or one Kafka message. Parsing uses the pure parsers of ``services.ingest.domain`` with
the wall clock as ingestion time (SAFETY_RULES §5: Day 0 is when TrialWatch ingested a record that
carries no time of its own). A batch of one chunk (an MLLP burst, an HTTP request, a Kafka message) is
parsed in the event loop and committed together with the batches that arrive beside it
(`services.ingest.group_commit`); a larger one is parsed in a worker thread, a chunk at a time, so the
event loop keeps serving other connections and memory stays bounded, and its chunks share a transaction
of their own.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Protocol

from services.ingest.batch import Accepted, Arrival, Channel, Outcome, build_batch
from services.ingest.domain import (
    ParserConfig,
    ParseResult,
    parse_fhir_document,
    parse_hl7_message,
    parse_record_line,
)
from services.ingest.group_commit import GroupCommit
from services.ingest.metrics import IngestMetrics
from services.ingest.ports import Store
from services.ingest.units import Format, Unit

CHUNK_UNITS = 500
#: Smaller chunks (an MLLP burst, an HTTP request of NDJSON lines, one Kafka message) are parsed in the event
#: loop: at most ~10 ms of it, while handing a chunk to a worker thread and back (and the two threads taking
#: the GIL from each other) cost more CPU than a burst's parsing saves the loop (measured: bench.ingest_service).
INLINE_UNITS = 128
INLINE_BYTES = 256 * 1024

Parsed = list[tuple[Unit, Sequence[ParseResult]]]


class Ingest(Protocol):
    """What the channels (MLLP, HTTP, Kafka) call: `Ingestion`, or a test double."""

    async def ingest(self, units: Iterable[Unit], fmt: Format, channel: Channel) -> list[Outcome]: ...


def wall_clock() -> datetime:
    return datetime.now(UTC)


def parse_unit(unit: Unit, fmt: Format, config: ParserConfig, received_at: datetime) -> Sequence[ParseResult]:
    """The records of one unit: one, or one per entry of a FHIR Bundle."""
    if fmt == "hl7v2":
        return [parse_hl7_message(unit.data, config, origin=unit.origin, received_at=received_at)]
    if fmt == "records":
        return [parse_record_line(unit.data, config, origin=unit.origin, received_at=received_at)]
    return parse_fhir_document(
        unit.data, config, origin=unit.origin, entry_origin=unit.entry_origin, received_at=received_at
    )


def parse_units(units: Sequence[Unit], fmt: Format, config: ParserConfig, received_at: datetime) -> Parsed:
    return [(unit, parse_unit(unit, fmt, config, received_at)) for unit in units]


def _chunks(units: Iterable[Unit]) -> Iterator[list[Unit]]:
    iterator = iter(units)
    while chunk := list(itertools.islice(iterator, CHUNK_UNITS)):
        yield chunk


def _settle(outcome: Outcome, fresh: set[str]) -> Outcome:
    if isinstance(outcome, Accepted) and not outcome.duplicate and outcome.key not in fresh:
        return dataclasses.replace(outcome, duplicate=True)
    return outcome


class Ingestion:
    def __init__(
        self,
        config: ParserConfig,
        store: Store,
        metrics: IngestMetrics,
        clock: Callable[[], datetime] = wall_clock,
    ) -> None:
        self._config = config
        self._store = store
        self._group = GroupCommit(store)
        self._metrics = metrics
        self._clock = clock

    async def ingest(self, units: Iterable[Unit], fmt: Format, channel: Channel) -> list[Outcome]:
        """One outcome per record, in input order, once the batch is committed.

        Raises StorageUnavailableError when the database cannot take the batch (nothing is stored then).
        """
        started = time.perf_counter()
        arrival = Arrival(channel, fmt, self._clock(), self._config.default_study_id)
        chunks = _chunks(units)
        first = next(chunks, [])
        second = next(chunks, None)
        if second is None:  # one chunk (a burst, a request): committed with the batches that arrive beside it
            batch, outcomes = build_batch(await self._parse(first, fmt, arrival.received_at), arrival, set())
            fresh = await self._group.write(batch)
            outcomes = [_settle(outcome, fresh) for outcome in outcomes]
        else:
            outcomes = await self._ingest_alone(itertools.chain((first, second), chunks), fmt, arrival)
        self._metrics.batch_committed(channel, fmt, outcomes, time.perf_counter() - started)
        return outcomes

    async def _ingest_alone(self, chunks: Iterable[list[Unit]], fmt: Format, arrival: Arrival) -> list[Outcome]:
        """A large input (a file's worth) in a transaction of its own, parsed and written a chunk at a time."""
        outcomes: list[Outcome] = []
        seen: set[str] = set()
        async with self._store.transaction() as writer:
            for chunk in chunks:
                parsed = await self._parse(chunk, fmt, arrival.received_at)
                batch, chunk_outcomes = build_batch(parsed, arrival, seen)
                fresh = await writer.write(batch)
                outcomes += [_settle(outcome, fresh) for outcome in chunk_outcomes]
        return outcomes

    async def _parse(self, chunk: Sequence[Unit], fmt: Format, received_at: datetime) -> Parsed:
        if len(chunk) < INLINE_UNITS and sum(len(unit.data) for unit in chunk) < INLINE_BYTES:
            return parse_units(chunk, fmt, self._config, received_at)
        return await asyncio.to_thread(parse_units, chunk, fmt, self._config, received_at)
