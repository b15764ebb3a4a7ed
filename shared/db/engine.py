"""Async engine and session factory, built from settings by a service's bootstrap (never at import)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from shared.settings import DatabaseSettings


def create_engine(settings: DatabaseSettings, *, application_name: str, pre_ping: bool = True) -> AsyncEngine:
    """``pre_ping``: test each connection as it leaves the pool (with asyncpg a transaction begun and rolled
    back: two round trips per transaction). Without it, the first use of a connection the database dropped
    fails, SQLAlchemy replaces the pool's connections, and the caller's retry gets a fresh one: callers
    that retry a failed transaction anyway (ingest, safety_rules) save the round trips."""
    return create_async_engine(
        settings.url.get_secret_value(),
        pool_size=settings.pool_size,
        pool_pre_ping=pre_ping,
        connect_args={"server_settings": {"application_name": application_name}},
    )


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    """Raises unless the database answers."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def live_driver(connection: AsyncConnection) -> Any:
    """The asyncpg connection under ``connection``, for statements sent to it directly (no transaction:
    each commits on its own). One that asyncpg saw the database close (no round trip to tell) is
    invalidated and replaced first; the caller invalidates it when a statement fails on it."""
    raw = await connection.get_raw_connection()
    if raw.driver_connection is None or raw.driver_connection.is_closed():
        await connection.invalidate()
        raw = await connection.get_raw_connection()
    return raw.driver_connection
