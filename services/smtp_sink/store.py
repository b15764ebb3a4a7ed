"""``smtp_sink.message`` (created by migration 0004): one row per Message-ID, with every byte received.

A message received again under the same Message-ID (a sender's retry after a crash) is not stored twice:
its ``receptions`` count goes up, so a test or the demo can tell a duplicate from a new message.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Integer, LargeBinary, MetaData, Table, Text, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from services.smtp_sink.headers import KeptHeaders, kept_headers

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
    def headers(self) -> KeptHeaders:
        return kept_headers(self.raw)

    @property
    def message_id(self) -> str:
        """The Message-ID header; a content hash stands in for a message without one."""
        found = self.headers.message_id
        return found.strip() if found else f"<sha256-{hashlib.sha256(self.raw).hexdigest()}@smtp-sink>"

    @property
    def subject(self) -> str | None:
        return self.headers.subject


async def message_by_id(engine: AsyncEngine, message_id: str) -> dict[str, Any] | None:
    """What the sink holds under ``message_id`` (the demo reads a notification back with this)."""
    async with engine.connect() as connection:
        row = (await connection.execute(select(message).where(message.c.message_id == message_id))).first()
    return None if row is None else dict(row._mapping)
