"""Outbox relay sessions that take turns across service instances.

The shared relay claims rows ``FOR UPDATE SKIP LOCKED``: with two instances, two relays would publish
two batches of one study's signals at the same time and could interleave them on
trialwatch.signals.v1. Each relay transaction here first takes one transaction-level advisory lock,
so the rounds of all instances run one after another and a study's signals leave in recording order.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, SessionTransaction

#: pg_advisory_xact_lock key of the safety_rules outbox relay (any constant unique in the database).
RELAY_LOCK_KEY = 0x5AFE_0001


class RelaySession(Session):
    """The sync session class behind the relay's async sessions (carries the lock hook)."""


@event.listens_for(RelaySession, "after_begin")
def _take_relay_turn(_session: Session, _transaction: SessionTransaction, connection: Connection) -> Any:
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RELAY_LOCK_KEY})


def relay_sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=RelaySession)
