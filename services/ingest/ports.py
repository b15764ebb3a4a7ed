"""What the ingest use case needs of storage: a transaction that writes batches and says which records were new."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from services.ingest.batch import Batch


class StorageUnavailableError(ConnectionError):
    """The database is away: nothing of the batch was stored, the sender should send it again.

    A ConnectionError, so that the Kafka dead-letter middleware treats it as infrastructure (the message
    is redelivered later, never dead-lettered).
    """


class BatchWriter(Protocol):
    async def write(self, batch: Batch) -> set[str]:
        """Stores the batch in the open transaction; returns the dedup keys that were new."""
        ...


class Store(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[BatchWriter]:
        """Commits what was written when the block ends; raises StorageUnavailableError if it cannot."""
        ...
