"""Inside the cluster: application role + database, readiness (asyncpg), alembic migrations."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import asyncpg

from trialwatch.devstack import pg_cluster
from trialwatch.devstack.console import DevstackError
from trialwatch.devstack.paths import ALEMBIC_INI, REPO_ROOT
from trialwatch.devstack.pg_layout import PgLayout
from trialwatch.devstack.settings import PgTarget, Settings


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def role_and_database_sql(target: PgTarget) -> str:
    role, pwd, db = _ident(target.user), _literal(target.password), target.database
    return f"""
SET password_encryption = 'scram-sha-256';
SELECT format('CREATE ROLE %I LOGIN', {_literal(target.user)})
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {_literal(target.user)}) \\gexec
ALTER ROLE {role} LOGIN PASSWORD {pwd};
SELECT format('CREATE DATABASE %I OWNER %I', {_literal(db)}, {_literal(target.user)})
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = {_literal(db)}) \\gexec
"""


def ensure_role_and_database(cfg: Settings, lay: PgLayout) -> None:
    target = cfg.pg_target()
    if target.port != cfg.pg_port:
        raise DevstackError(f"DATABASE_URL port {target.port} != TRIALWATCH_PG_PORT {cfg.pg_port}; fix the env file")
    pg_cluster.psql(cfg, lay, role_and_database_sql(target))


async def select_one(target: PgTarget, connect_timeout: float = 5.0) -> int:
    conn = await asyncpg.connect(
        host=target.host,
        port=target.port,
        user=target.user,
        password=target.password,
        database=target.database,
        timeout=connect_timeout,
    )
    try:
        return int(await conn.fetchval("SELECT 1"))
    finally:
        await conn.close()


async def wait_ready(target: PgTarget, within: float = 30.0) -> None:
    """Ready = asyncpg connects with the application's credentials and runs SELECT 1."""
    deadline = time.monotonic() + within
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if await select_one(target) == 1:
                return
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            last = exc
        await asyncio.sleep(0.3)
    raise DevstackError(f"PostgreSQL {target.host}:{target.port} not ready after {within:.0f}s: {last!r}")


def migrate(database_url: str) -> str:
    """``alembic -c deploy/alembic.ini upgrade head``; skipped while that file does not exist."""
    if not ALEMBIC_INI.exists():
        return "skipped (deploy/alembic.ini not present yet)"
    argv = [sys.executable, "-m", "alembic", "-c", str(ALEMBIC_INI), "upgrade", "head"]
    env = {**os.environ, "DATABASE_URL": database_url}
    proc = subprocess.run(argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise DevstackError(f"alembic upgrade head failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return "alembic upgrade head ok"
