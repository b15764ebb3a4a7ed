"""shared.db.group_commit, as the SMTP sink uses it: items queued while a write runs share the next write,
answered in order; a refused item fails alone; an outage fails the group once. (Against PostgreSQL:
tests/integration/test_notifier_smtp_sink.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from services.smtp_sink.store import Received
from services.smtp_sink.writer import distinct_messages
from shared.db.group_commit import GroupCommit


class OutageError(Exception):
    pass


class Database:
    """Records each write; refuses a write holding "bad"; raises OutageError while ``down``."""

    def __init__(self) -> None:
        self.writes: list[list[str]] = []
        self.down = False

    async def write(self, items: Sequence[str]) -> list[str]:
        self.writes.append(list(items))
        await asyncio.sleep(0)
        if self.down:
            raise OutageError("database away")
        if "bad" in items:
            raise ValueError("refused")
        return [item.upper() for item in items]


def everything(queued: Sequence[str]) -> list[int]:
    return list(range(len(queued)))


async def test_items_queued_together_are_written_together_and_answered_in_order() -> None:
    database = Database()
    group = GroupCommit(database.write, everything, name="test")
    answers = await asyncio.gather(*(group.submit(item) for item in ["a", "b", "c"]))
    assert answers == ["A", "B", "C"]
    assert database.writes == [["a", "b", "c"]]


async def test_items_the_chooser_leaves_are_written_next_in_their_order() -> None:
    """The sink's chooser: one Message-ID once per statement; a repeat goes in the next."""
    written: list[list[str]] = []

    async def write(messages: Sequence[Received]) -> list[str]:
        written.append([message.message_id for message in messages])
        return [message.message_id for message in messages]

    group = GroupCommit(write, lambda queued: distinct_messages(queued, max_group=3), name="test")
    ids = ["<a@x>", "<b@x>", "<a@x>", "<c@x>", "<d@x>", "<b@x>"]
    messages = [Received("s@x", ["r@x"], f"Message-ID: {i}\r\n\r\nbody\r\n".encode()) for i in ids]
    assert await asyncio.gather(*(group.submit(message) for message in messages)) == ids
    assert written == [["<a@x>", "<b@x>", "<c@x>"], ["<a@x>", "<d@x>", "<b@x>"]]


async def test_a_refused_item_fails_alone() -> None:
    database = Database()
    group = GroupCommit(database.write, everything, name="test", fails_group=(OutageError,))
    outcomes = await asyncio.gather(*(group.submit(i) for i in ["a", "bad", "c"]), return_exceptions=True)
    assert outcomes[0] == "A" and outcomes[2] == "C"
    assert isinstance(outcomes[1], ValueError)
    assert database.writes == [["a", "bad", "c"], ["a"], ["bad"], ["c"]]


async def test_an_outage_fails_the_whole_group_at_once() -> None:
    database = Database()
    database.down = True
    group = GroupCommit(database.write, everything, name="test", fails_group=(OutageError,))
    outcomes = await asyncio.gather(*(group.submit(i) for i in ["a", "b"]), return_exceptions=True)
    assert all(isinstance(outcome, OutageError) for outcome in outcomes)
    assert database.writes == [["a", "b"]]


async def test_a_chooser_that_skips_the_first_item_is_refused() -> None:
    group = GroupCommit(Database().write, lambda queued: [1], name="test")
    with pytest.raises(ValueError, match="first queued item"):
        await asyncio.gather(group.submit("a"), group.submit("b"))
