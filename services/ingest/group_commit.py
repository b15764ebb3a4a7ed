"""Group commit: the batches that arrive while a transaction is being written share the next one.

Each MLLP burst, HTTP request or Kafka message is one batch; the senders are many and each waits for
its answer, so one transaction per batch meant a transaction, a pooled connection and their round trips
per batch (at 6 senders more transactions at once than the pool holds: connections were opened and
closed all the time). Here one transaction is written at a time; the batches that queue meanwhile are
written, in arrival order, in the next, and every caller gets its answer only after that commit. A
record repeated across the batches of a group is fresh in the first one only (the ledger sees the
earlier rows of its own transaction). When the database is away the whole group fails with
StorageUnavailableError (nothing of it stored; each sender retries as before); any other error is
retried batch by batch, so that one batch the database refuses never fails the batches it was grouped with.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from services.ingest.batch import Batch
from services.ingest.ports import StorageUnavailableError, Store
from shared.logs import get_logger

#: Records (accepted and rejected) in one group at most: bounds a transaction's size and memory.
MAX_GROUP_RECORDS = 2000

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _Pending:
    batch: Batch
    fresh: asyncio.Future[set[str]]


def _size(batch: Batch) -> int:
    return len(batch.records) + len(batch.quarantine)


class GroupCommit:
    """`write` a batch: its new dedup keys, once it is committed (with the batches queued beside it)."""

    def __init__(self, store: Store, max_records: int = MAX_GROUP_RECORDS) -> None:
        self._store = store
        self._max_records = max_records
        self._queue: deque[_Pending] = deque()
        self._committer: asyncio.Task[None] | None = None
        self.transactions = 0

    async def write(self, batch: Batch) -> set[str]:
        """Raises StorageUnavailableError when the database could not take the batch's group."""
        if not _size(batch):
            return set()
        pending = _Pending(batch, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_queued(), name="ingest-group-commit")
        return await pending.fresh

    async def _commit_queued(self) -> None:
        """Runs while batches are queued, then ends (a new one starts with the next batch)."""
        group: list[_Pending] = []
        try:
            while self._queue:
                group = self._take()
                await self._commit(group)
        except BaseException as error:  # cancelled at shutdown: nothing of these was committed
            failure = StorageUnavailableError(f"not stored: {type(error).__name__}")
            for pending in (*group, *self._queue):
                _settle(pending, failure)
            self._queue.clear()
            raise

    def _take(self) -> list[_Pending]:
        group = [self._queue.popleft()]
        records = _size(group[0].batch)
        while self._queue and records + _size(self._queue[0].batch) <= self._max_records:
            group.append(self._queue.popleft())
            records += _size(group[-1].batch)
        return group

    async def _commit(self, group: list[_Pending]) -> None:
        try:
            fresh = await self._write(group)
        except StorageUnavailableError as error:
            for pending in group:
                _settle(pending, error)
            return
        except Exception as error:
            if len(group) == 1:
                _settle(group[0], error)
                return
            log.warning("ingest.group_refused", batches=len(group), error=repr(error))
            for pending in group:  # each alone: only the batch the database refuses fails
                await self._commit([pending])
            return
        for pending, keys in zip(group, fresh, strict=True):
            _settle(pending, keys)

    async def _write(self, group: list[_Pending]) -> list[set[str]]:
        async with self._store.transaction() as writer:
            fresh = [await writer.write(pending.batch) for pending in group]
        self.transactions += 1
        return fresh


def _settle(pending: _Pending, outcome: set[str] | BaseException) -> None:
    """Answers the caller, unless it gave up waiting (its batch was committed all the same)."""
    if pending.fresh.done():
        return
    if isinstance(outcome, BaseException):
        pending.fresh.set_exception(outcome)
    else:
        pending.fresh.set_result(outcome)
