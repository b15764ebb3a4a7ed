"""`trialwatch audit verify` against the real PostgreSQL: an intact chain passes; an edited entry, a deleted
entry and a truncated newest entry each fail with exit 1, naming the first bad entry."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from safety_rules_service.live_rig import create_database, drop_database
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from services.notifier.adapters.audit import AuditNote, append_audit
from trialwatch.devstack import envfile
from trialwatch.devstack.paths import REPO_ROOT
from trialwatch.devstack.settings import Settings

pytestmark = pytest.mark.integration

ENTRIES = 6


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def database(stack_settings: Settings) -> AsyncIterator[str]:
    name = f"it_audit_{uuid.uuid4().hex[:10]}"
    url = await asyncio.to_thread(create_database, stack_settings, name)
    yield url
    await asyncio.to_thread(drop_database, stack_settings, name)


@pytest_asyncio.fixture(loop_scope="session")
async def chain(database: str) -> AsyncIterator[AsyncEngine]:
    """A fresh chain of ENTRIES entries, appended one transaction each, as the notifier appends them."""
    engine = create_async_engine(database)
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE notifier.audit_log, notifier.audit_head RESTART IDENTITY"))
    sessions = async_sessionmaker(engine)
    for n in range(1, ENTRIES + 1):
        async with sessions.begin() as session:
            await append_audit(session, [AuditNote("system:notifier", "alert.opened", f"alert-{n}", {"n": n})])
    yield engine
    await engine.dispose()


def verify(url: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "trialwatch.cli", "audit", "verify", "--database", url]
    env = {**os.environ, envfile.ENV_FILE_VAR: str(envfile.env_path("test"))}
    return subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


async def tamper(engine: AsyncEngine, sql: str) -> None:
    async with engine.begin() as connection:
        await connection.execute(text(sql))


async def test_an_intact_chain_verifies(chain: AsyncEngine, database: str) -> None:
    done = await asyncio.to_thread(verify, database)
    assert done.returncode == 0, done.stderr
    assert f"{ENTRIES} entries" in done.stdout


async def test_an_edited_entry_is_named(chain: AsyncEngine, database: str) -> None:
    await tamper(chain, "UPDATE notifier.audit_log SET detail = '{\"n\": 99}' WHERE id = 3")
    done = await asyncio.to_thread(verify, database)
    assert done.returncode == 1
    assert "BROKEN at entry 3" in done.stderr and "altered" in done.stderr


async def test_a_deleted_entry_is_named(chain: AsyncEngine, database: str) -> None:
    await tamper(chain, "DELETE FROM notifier.audit_log WHERE id = 4")
    done = await asyncio.to_thread(verify, database)
    assert done.returncode == 1
    assert "BROKEN at entry 4" in done.stderr and "removed" in done.stderr


async def test_a_truncated_newest_entry_is_named_through_the_head(chain: AsyncEngine, database: str) -> None:
    await tamper(chain, f"DELETE FROM notifier.audit_log WHERE id = {ENTRIES}")
    done = await asyncio.to_thread(verify, database)
    assert done.returncode == 1
    assert f"BROKEN at entry {ENTRIES}" in done.stderr and "truncated" in done.stderr


async def test_reordered_entries_are_named(chain: AsyncEngine, database: str) -> None:
    await tamper(chain, "UPDATE notifier.audit_log SET id = -id WHERE id IN (2, 3)")
    await tamper(chain, "UPDATE notifier.audit_log SET id = CASE id WHEN -2 THEN 3 ELSE 2 END WHERE id IN (-2, -3)")
    done = await asyncio.to_thread(verify, database)
    assert done.returncode == 1
    assert "BROKEN at entry 2" in done.stderr


async def test_transactions_of_many_entries_chain_in_order_and_verify(database: str) -> None:
    """A poll's transaction appends its entries with one multi-row insert: numbered in chain order, gap-free,
    the head naming the last; a second transaction continues the chain."""
    engine = create_async_engine(database)
    await tamper(engine, "TRUNCATE notifier.audit_log, notifier.audit_head RESTART IDENTITY")
    sessions = async_sessionmaker(engine)
    for _ in range(2):
        notes = [AuditNote("system:notifier", "delivery.queued", f"alert-{n}", {"n": n}) for n in range(700)]
        async with sessions.begin() as session:
            await append_audit(session, notes)
    async with engine.connect() as connection:
        ids = (await connection.execute(text("SELECT id, detail->>'n' FROM notifier.audit_log ORDER BY id"))).all()
        head = (await connection.execute(text("SELECT last_id FROM notifier.audit_head"))).scalar_one()
    await engine.dispose()
    assert [row[0] for row in ids] == list(range(1, 1401)) and head == 1400
    assert [int(row[1]) for row in ids] == list(range(700)) * 2
    done = await asyncio.to_thread(verify, database)
    assert done.returncode == 0, done.stderr
    assert "1400 entries" in done.stdout
