"""The ingest use case: parse a batch of source units, store it in one transaction, answer per record.

Every channel (MLLP, HTTP, Kafka) calls `Ingestion.ingest` with the units of one request, one burst
of MLLP messages or one Kafka message. Parsing uses the pure parsers of ``services.ingest.domain`` with
the wall clock as ingestion time (SAFETY_RULES §5: Day 0 is when TrialWatch ingested a record that
carries no time of its own). Large batches are parsed in a worker thread, a chunk at a time, so the
event loop keeps serving other connections and memory stays bounded; all chunks share one transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from typing import Protocol

from services.ingest.batch import Accepted, Arrival, Batch, Channel, Outcome, build_batch
from services.ingest.domain import (
    ParserConfig,
    ParseResult,
    parse_fhir_document,
    parse_hl7_message,
    parse_record_line,
)
from services.ingest.metrics import IngestMetrics
from services.ingest.units import Format, Unit

CHUNK_UNITS = 500
INLINE_UNITS = 16  # smaller chunks are parsed in the event loop (an MLLP burst, one Kafka message)
INLINE_BYTES = 64 * 1024

Parsed = list[tuple[Unit, Sequence[ParseResult]]]


class StorageUnavailableError(ConnectionError):
    """The database is away: nothing of the batch was stored, the sender should send it again.

    A ConnectionError, so that the Kafka dead-letter middleware treats it as infrastructure (the message
    is redelivered later, never dead-lettered).
    """


class Ingest(Protocol):
    """What the channels (MLLP, HTTP, Kafka) call: `Ingestion`, or a test double."""

    async def ingest(self, units: Iterable[Unit], fmt: Format, channel: Channel) -> list[Outcome]: ...


class BatchWriter(Protocol):
    async def write(self, batch: Batch) -> set[str]: ...


class Store(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[BatchWriter]:
        """Commits what was written when the block ends; raises StorageUnavailableError if it cannot."""
        ...


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
        self._metrics = metrics
        self._clock = clock

    async def ingest(self, units: Iterable[Unit], fmt: Format, channel: Channel) -> list[Outcome]:
        """One outcome per record, in input order, once the batch is committed.

        Raises StorageUnavailableError when the database cannot take the batch (nothing is stored then).
        """
        started = time.perf_counter()
        arrival = Arrival(channel, fmt, self._clock(), self._config.default_study_id)
        outcomes: list[Outcome] = []
        seen: set[str] = set()
        async with self._store.transaction() as writer:
            for chunk in _chunks(units):
                parsed = await self._parse(chunk, fmt, arrival.received_at)
                batch, chunk_outcomes = build_batch(parsed, arrival, seen)
                fresh = await writer.write(batch)
                outcomes += [_settle(outcome, fresh) for outcome in chunk_outcomes]
        self._metrics.batch_committed(channel, fmt, outcomes, time.perf_counter() - started)
        return outcomes

    async def _parse(self, chunk: Sequence[Unit], fmt: Format, received_at: datetime) -> Parsed:
        if len(chunk) < INLINE_UNITS and sum(len(unit.data) for unit in chunk) < INLINE_BYTES:
            return parse_units(chunk, fmt, self._config, received_at)
        return await asyncio.to_thread(parse_units, chunk, fmt, self._config, received_at)
