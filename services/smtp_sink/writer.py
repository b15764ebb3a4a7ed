"""Received messages written by group commit (shared.db.group_commit): messages that arrive while a
statement is being written share the next one, and each sender gets its 250 only after that commit.

One statement stores a group (an ``unnest`` of arrays, sent to the asyncpg connection outside any
transaction: itself the transaction, one round trip), where a SQLAlchemy transaction per message took
three round trips and compiled its statement each time. A group holds each Message-ID once: a repeat
waits for the next statement, so that its reception is counted after the first (and one statement never
updates a row twice). A message PostgreSQL refuses fails alone: its sender gets the 451 and retries.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from services.smtp_sink.store import Received
from shared.db import live_driver
from shared.db.group_commit import GroupCommit

#: Messages in one statement at most: bounds its size (each holds every byte of its message).
MAX_GROUP = 64

STORE = """
INSERT INTO smtp_sink.message AS m (message_id, mail_from, rcpt_tos, subject, raw)
SELECT message_id, mail_from, rcpt_tos::jsonb, subject, raw
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bytea[])
     AS t(message_id, mail_from, rcpt_tos, subject, raw)
ON CONFLICT (message_id) DO UPDATE SET receptions = m.receptions + 1, last_received_at = now()
RETURNING m.message_id, m.receptions
"""


def distinct_messages(queued: Sequence[Received], max_group: int = MAX_GROUP) -> list[int]:
    """The first ``max_group`` queued messages with a Message-ID not already among them."""
    chosen: list[int] = []
    seen: set[str] = set()
    for index, message in enumerate(queued):
        if len(chosen) == max_group:
            break
        if message.message_id not in seen:
            seen.add(message.message_id)
            chosen.append(index)
    return chosen


class MessageWriter:
    """``store`` a message: its receptions so far (1 when it is new), once committed."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._group: GroupCommit[Received, int] = GroupCommit(
            self._write, distinct_messages, name="smtp-sink-group-commit"
        )

    @property
    def statements(self) -> int:
        return self._group.writes

    async def store(self, received: Received) -> int:
        """Raises what PostgreSQL raised when the message could not be stored (its sender gets a 451)."""
        return await self._group.submit(received)

    async def _write(self, messages: Sequence[Received]) -> list[int]:
        columns = (
            [message.message_id for message in messages],
            [message.mail_from for message in messages],
            [json.dumps(message.rcpt_tos) for message in messages],
            [message.subject for message in messages],
            [message.raw for message in messages],
        )
        async with self._engine.connect() as connection:
            driver = await live_driver(connection)
            try:
                rows = await driver.fetch(STORE, *columns)
            except BaseException:
                await connection.invalidate()  # SQLAlchemy saw no error: the pool must not hand it out again
                raise
        receptions = {row[0]: row[1] for row in rows}
        return [receptions[message.message_id] for message in messages]
