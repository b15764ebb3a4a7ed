"""Alembic environment (async, asyncpg). Target metadata: every service's tables, for autogenerate."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig
from typing import Literal

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import services.ingest.adapters.tables
import services.notifier.adapters.tables
import services.safety_rules.adapters.tables  # noqa: F401 - registers the tables on Base.metadata
from shared.db import SERVICE_SCHEMAS, Base
from shared.settings import DatabaseSettings

NameKind = Literal["schema", "table", "column", "index", "unique_constraint", "foreign_key_constraint"]


def database_url() -> str:
    override = context.get_x_argument(as_dictionary=True).get("url")
    return override or DatabaseSettings.load().url.get_secret_value()


def include_name(name: str | None, type_: NameKind, _parents: dict[str, str | None]) -> bool:
    """Compare only our service schemas (and never PostgreSQL's own or ``public``)."""
    return type_ != "schema" or name in SERVICE_SCHEMAS


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        include_schemas=True,
        include_name=include_name,
        compare_type=True,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_online() -> None:
    engine = create_async_engine(database_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


if context.config.config_file_name is not None:
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    context.configure(url=database_url(), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(run_online())
