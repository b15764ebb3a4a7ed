"""Alembic against the real test PostgreSQL: a fresh, empty database goes to head and back to base.

Each test gets its own new database in the test cluster (created as the cluster superuser over the
devstack's private socket, or as the application role when DATABASE_URL names an external server).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest
import pytest_asyncio
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import services.ingest.adapters.tables
import services.notifier.adapters.tables
import services.safety_rules.adapters.tables  # noqa: F401 - the models the migrations must match
from shared.db import SERVICE_SCHEMAS, Base
from trialwatch.devstack import pg_cluster, pg_layout
from trialwatch.devstack.paths import ALEMBIC_INI, REPO_ROOT
from trialwatch.devstack.settings import Settings

pytestmark = pytest.mark.integration

EXPECTED_TABLES = {
    "ingest.raw_input",
    "ingest.canonical_event",
    "ingest.quarantine",
    "ingest.outbox",
    "safety_rules.processed_event",
    "safety_rules.participant_state",
    "safety_rules.participant_result",
    "safety_rules.study_state",
    "safety_rules.processed_source",
    "safety_rules.signal",
    "safety_rules.outbox",
    "notifier.processed_event",
    "notifier.alert",
    "notifier.delivery",
    "notifier.audit_log",
    "notifier.audit_head",
    "notifier.timer",
    "notifier.pause_event",
    "notifier.outbox",
}


def quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


async def as_admin(cfg: Settings, sql: str) -> None:
    """CREATE/DROP DATABASE: the cluster superuser when the devstack runs PostgreSQL."""
    if not cfg.external_db:
        pg_cluster.psql(cfg, pg_layout.layout(cfg), sql)
        return
    engine = create_async_engine(cfg.database_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(sql))
    finally:
        await engine.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def empty_database(stack_settings: Settings) -> AsyncIterator[str]:
    target = stack_settings.pg_target()
    name = f"trialwatch_migrations_{uuid.uuid4().hex[:10]}"
    await as_admin(stack_settings, f"CREATE DATABASE {quoted(name)} OWNER {quoted(target.user)};")
    auth = f"{quote(target.user)}:{quote(target.password, safe='')}"
    try:
        yield f"postgresql+asyncpg://{auth}@{target.host}:{target.port}/{name}"
    finally:
        await as_admin(stack_settings, f"DROP DATABASE IF EXISTS {quoted(name)} WITH (FORCE);")


def alembic(url: str, *args: str) -> str:
    """Runs the alembic command line as the devstack and operators do; fails with its stderr."""
    argv = [sys.executable, "-m", "alembic", "-c", str(ALEMBIC_INI), *args]
    env = {**os.environ, "DATABASE_URL": url}
    proc = subprocess.run(argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, f"alembic {' '.join(args)} failed:\n{proc.stderr[-4000:]}"
    return proc.stdout + proc.stderr


async def service_tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                text(
                    "SELECT table_schema || '.' || table_name FROM information_schema.tables "
                    "WHERE table_schema = ANY(:schemas)"
                ),
                {"schemas": list(SERVICE_SCHEMAS)},
            )
            return {row[0] for row in rows}
    finally:
        await engine.dispose()


def differences(connection: Connection) -> list[object]:
    def ours(name: str | None, type_: str, _parents: object) -> bool:
        return type_ != "schema" or name in SERVICE_SCHEMAS

    context = MigrationContext.configure(
        connection, opts={"include_schemas": True, "include_name": ours, "compare_type": True}
    )
    return list(compare_metadata(context, Base.metadata))


async def test_upgrade_head_from_an_empty_database_creates_every_service_table(empty_database: str) -> None:
    assert await service_tables(empty_database) == set()
    alembic(empty_database, "upgrade", "head")
    assert await service_tables(empty_database) == EXPECTED_TABLES


async def test_migrated_database_matches_the_sqlalchemy_models_exactly(empty_database: str) -> None:
    alembic(empty_database, "upgrade", "head")
    engine = create_async_engine(empty_database)
    try:
        async with engine.connect() as connection:
            drift = await connection.run_sync(differences)
    finally:
        await engine.dispose()
    assert drift == [], f"models and migrations disagree; write a migration for: {drift}"


async def test_downgrade_base_removes_every_service_schema_and_upgrade_runs_again(empty_database: str) -> None:
    alembic(empty_database, "upgrade", "head")
    alembic(empty_database, "downgrade", "base")
    assert await service_tables(empty_database) == set()
    engine = create_async_engine(empty_database)
    try:
        async with engine.connect() as connection:
            schemas = await connection.execute(
                text("SELECT schema_name FROM information_schema.schemata WHERE schema_name = ANY(:s)"),
                {"s": list(SERVICE_SCHEMAS)},
            )
            assert schemas.all() == []
    finally:
        await engine.dispose()
    alembic(empty_database, "upgrade", "head")
    assert await service_tables(empty_database) == EXPECTED_TABLES
