"""``smtp_sink.message`` (created by migration 0004): one row per Message-ID, with every byte received.

A message received again under the same Message-ID (a sender's retry after a crash) is not stored twice:
its ``receptions`` count goes up, so a test or the demo can tell a duplicate from a new message.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import default
from functools import cached_property
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Integer, LargeBinary, MetaData, Table, Text, func, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncEngine

metadata = MetaData(schema="smtp_sink")

message = Table(
    "message",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("message_id", Text, nullable=False, unique=True),
    Column("mail_from", Text, nullable=False),
    Column("rcpt_tos", JSONB, nullable=False),
    Column("subject", Text),
    Column("raw", LargeBinary, nullable=False),
    Column("received_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
    Column("receptions", Integer, server_default="1", nullable=False),
    Column("last_received_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @cached_property
    def headers(self) -> Any:
        """Parsed once: the policy's header objects are most of the sink's CPU per message."""
        return BytesHeaderParser(policy=default).parsebytes(self.raw)

    @property
    def message_id(self) -> str:
        """The Message-ID header; a content hash stands in for a message without one."""
        found = self.headers.get("Message-ID")
        return str(found).strip() if found else f"<sha256-{hashlib.sha256(self.raw).hexdigest()}@smtp-sink>"


async def store(engine: AsyncEngine, received: Received) -> int:
    """Stores the message (or counts a repeat); returns its receptions so far."""
    subject = received.headers.get("Subject")
    new = insert(message).values(
        message_id=received.message_id,
        mail_from=received.mail_from,
        rcpt_tos=received.rcpt_tos,
        subject=str(subject) if subject is not None else None,
        raw=received.raw,
    )
    statement = new.on_conflict_do_update(
        index_elements=["message_id"],
        set_={"receptions": message.c.receptions + 1, "last_received_at": func.now()},
    ).returning(message.c.receptions)
    async with engine.begin() as connection:
        return int((await connection.execute(statement)).scalar_one())


async def message_by_id(engine: AsyncEngine, message_id: str) -> dict[str, Any] | None:
    """What the sink holds under ``message_id`` (the demo reads a notification back with this)."""
    async with engine.connect() as connection:
        row = (await connection.execute(select(message).where(message.c.message_id == message_id))).first()
    return None if row is None else dict(row._mapping)
