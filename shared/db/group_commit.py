"""Group commit: the items that arrive while a group is being written share the next write.

Callers are many and each waits for its answer; one transaction each costs a transaction, a pooled
connection and their round trips per item. Here one group is written at a time; the items queued
meanwhile are written, in arrival order, in the next, and every caller gets its answer only after the
write that holds its item has committed. A failed write of several items is tried again item by item,
so that one item the database refuses never fails the items it was grouped with; an error listed in
``fails_group`` (the database is away: each alone would fail the same) fails the whole group at once.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: ``write(items)``: commits the items (all or none) and returns each one's answer, in order.
Write = Callable[[Sequence[T]], Awaitable[Sequence[R]]]
#: ``choose(queued)``: the positions of the queued items to write next, always including the first (0).
Choose = Callable[[Sequence[T]], Sequence[int]]


@dataclass(frozen=True, slots=True)
class _Pending(Generic[T, R]):
    item: T
    answer: asyncio.Future[R]


class GroupCommit(Generic[T, R]):
    """``submit`` an item: its answer, once it is committed (with the items grouped beside it)."""

    def __init__(
        self, write: Write[T, R], choose: Choose[T], *, name: str, fails_group: tuple[type[Exception], ...] = ()
    ) -> None:
        self._write = write
        self._choose = choose
        self._name = name
        self._fails_group = fails_group
        self._queue: deque[_Pending[T, R]] = deque()
        self._committer: asyncio.Task[None] | None = None
        self.writes = 0

    async def submit(self, item: T) -> R:
        """Raises what the write of the item's group (or of the item alone) raised."""
        pending: _Pending[T, R] = _Pending(item, asyncio.get_running_loop().create_future())
        self._queue.append(pending)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_queued(), name=self._name)
        return await pending.answer

    async def _commit_queued(self) -> None:
        """Runs while items are queued, then ends (a new one starts with the next item)."""
        group: list[_Pending[T, R]] = []
        try:
            while self._queue:
                group = self._take()
                await self._commit(group)
        except BaseException as error:  # cancelled at shutdown (or a chooser's bug): their callers are told
            for pending in (*group, *self._queue):
                _settle(pending, error)
            self._queue.clear()
            if not isinstance(error, Exception):
                raise

    def _take(self) -> list[_Pending[T, R]]:
        queued = list(self._queue)
        chosen = sorted(set(self._choose([pending.item for pending in queued])))
        if not chosen or chosen[0] != 0:
            raise ValueError(f"{self._name}: a group must start with the first queued item")
        taken = set(chosen)
        self._queue = deque(pending for index, pending in enumerate(queued) if index not in taken)
        return [queued[index] for index in chosen]

    async def _commit(self, group: list[_Pending[T, R]]) -> None:
        try:
            answers = await self._write([pending.item for pending in group])
            self.writes += 1
        except self._fails_group as error:
            for pending in group:
                _settle(pending, error)
            return
        except Exception as error:
            if len(group) == 1:
                _settle(group[0], error)
                return
            for pending in group:  # each alone: only the item the database refuses fails
                await self._commit([pending])
            return
        for pending, answer in zip(group, answers, strict=True):
            _settle(pending, answer)


def _settle(pending: _Pending[T, R], outcome: R | BaseException) -> None:
    """Answers the caller, unless it gave up waiting (its item may have been committed all the same)."""
    if pending.answer.done():
        return
    if isinstance(outcome, BaseException):
        pending.answer.set_exception(outcome)
    else:
        pending.answer.set_result(outcome)
