"""HL7 messages and an in-memory store for the fast ingest service tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from services.ingest.batch import Batch
from services.ingest.domain import ParserConfig
from services.ingest.handlers import Ingestion
from services.ingest.metrics import IngestMetrics
from services.ingest.ports import StorageUnavailableError

STUDY = "ANAKINRA-AD"
#: What PID-5/7/11/13/19 hold in `oru`: none of it may be stored.
IDENTIFIERS = ("Doe^Jane^Q", "19800704", "12 Elm St", "(301)555-0100", "123-45-6789")


def oru(
    control: str,
    *,
    facility: str = "NIHCC-LAB",
    message_type: str = "ORU^R01^ORU_R01",
    processing: str = "P",
    pid3: str = f"AD-001^^^{STUDY}^SUBJ",
    sent: str = "20260302081500",
    value: str = "0.8",
) -> bytes:
    segments = [
        f"MSH|^~\\&|LIS|{facility}|TRIALWATCH|NIAID|{sent}||{message_type}|{control}|{processing}|2.5.1",
        f"PID|1||{pid3}||Doe^Jane^Q||19800704|F|||12 Elm St^^Bethesda^MD^20892||(301)555-0100|||||123-45-6789",
        f"OBR|1|PL-{control}|FO-{control}^LIS|57021-8^CBC^LN|||20260302080000",
        f"OBX|1|NM|751-8^Neutrophils^LN||{value}|10*9/L|1.8-8.0|L|||F",
    ]
    return ("\r".join(segments) + "\r").encode()


def parser_config() -> ParserConfig:
    return ParserConfig(frozenset({STUDY}), STUDY)


class MemoryWriter:
    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.new: set[str] = set()

    async def write(self, batch: Batch) -> set[str]:
        if self._store.failures:
            self._store.failures -= 1
            raise StorageUnavailableError("database away")
        fresh = {row.key for row in batch.records} - self._store.keys - self.new
        self.new |= fresh
        self._store.batches.append(batch)
        return fresh


@dataclass
class MemoryStore:
    """The store port in memory: the keys committed so far; ``failures`` makes the next writes fail."""

    keys: set[str] = field(default_factory=set)
    batches: list[Batch] = field(default_factory=list)
    failures: int = 0
    commits: int = 0

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[MemoryWriter]:
        writer = MemoryWriter(self)
        yield writer
        self.keys |= writer.new
        self.commits += 1


def memory_ingestion(store: MemoryStore | None = None) -> tuple[Ingestion, MemoryStore]:
    store = store or MemoryStore()
    return Ingestion(parser_config(), store, IngestMetrics(CollectorRegistry())), store
