"""The local SMTP sink as `make up` runs it (`python -m services.smtp_sink`): it answers /healthz, stores what
it receives in PostgreSQL by Message-ID (readable back by the demo), and counts a resend instead of storing
it twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage

import aiosmtplib
import httpx
import pytest
import pytest_asyncio
from safety_rules_service.live_rig import create_database, drop_database, free_port
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.smtp_sink.settings import default_health_port
from services.smtp_sink.store import Received, message_by_id
from services.smtp_sink.writer import MessageWriter
from trialwatch.devstack import envfile, procs
from trialwatch.devstack.paths import REPO_ROOT
from trialwatch.devstack.settings import Settings

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(loop_scope="session")
async def database(stack_settings: Settings) -> AsyncIterator[str]:
    name = f"it_sink_{uuid.uuid4().hex[:10]}"
    url = await asyncio.to_thread(create_database, stack_settings, name)
    yield url
    await asyncio.to_thread(drop_database, stack_settings, name)


def two_free_ports() -> int:
    """A port whose successor (the default health port) is free too."""
    while True:
        port = free_port()
        if port < 65535 and not procs.port_open("127.0.0.1", port + 1):
            return port


@pytest.fixture
def sink(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = two_free_ports()
    env = {**os.environ, envfile.ENV_FILE_VAR: str(envfile.env_path("test")), "DATABASE_URL": database}
    env |= {"TRIALWATCH_SMTP_PORT": str(port), "PYTHONUNBUFFERED": "1"}
    env.pop("TRIALWATCH_SMTP_HEALTH_PORT", None)
    log = tmp_path_factory.mktemp("sink") / "sink.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.smtp_sink"], env=env, cwd=REPO_ROOT, stdout=out, stderr=out
        )
    try:
        yield port, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def wait_healthy(url: str, process: subprocess.Popen[bytes]) -> httpx.Response:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "the sink exited during startup"
        try:
            response = httpx.get(url, timeout=2.0)
            if response.status_code == 200:
                return response
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} not healthy")


def mail(message_id: str, subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "trialwatch@localhost", "pi@trial.test", subject
    message["Message-ID"] = message_id
    message.set_content("ANC 0.8 x10^9/L, grade 3")
    return message


@pytest_asyncio.fixture(loop_scope="session")
async def engine(database: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database)
    yield engine
    await engine.dispose()


async def test_the_sink_stores_by_message_id_and_counts_a_resend(
    sink: tuple[int, subprocess.Popen[bytes]], engine: AsyncEngine
) -> None:
    port, process = sink
    health = await asyncio.to_thread(wait_healthy, f"http://127.0.0.1:{default_health_port(port)}/healthz", process)
    assert health.json()["checks"] == {"smtp": "ok", "database": "ok"}
    first, other = f"<{uuid.uuid4()}@trialwatch.local>", f"<{uuid.uuid4()}@trialwatch.local>"
    for message in (mail(first, "LAB-ANC-3"), mail(first, "LAB-ANC-3"), mail(other, "LAB-PLT-4")):
        await aiosmtplib.send(message, hostname="127.0.0.1", port=port, timeout=10)
    stored = await message_by_id(engine, first)
    assert stored is not None
    assert stored["receptions"] == 2 and stored["subject"] == "LAB-ANC-3"
    assert stored["rcpt_tos"] == ["pi@trial.test"] and b"grade 3" in stored["raw"]
    assert (await message_by_id(engine, other) or {}).get("receptions") == 1
    process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(process.wait, 30) in (0, -signal.SIGTERM)


async def test_a_dropped_database_connection_costs_the_sender_one_451_at_most(
    sink: tuple[int, subprocess.Popen[bytes]], engine: AsyncEngine
) -> None:
    """The sink's engine does not pre-ping its connections: a message on a connection PostgreSQL has dropped
    fails, is answered 451 (the sender keeps it), and the sender's retry is stored on a fresh connection."""
    port, process = sink
    await asyncio.to_thread(wait_healthy, f"http://127.0.0.1:{default_health_port(port)}/healthz", process)
    before = f"<{uuid.uuid4()}@trialwatch.local>"
    await aiosmtplib.send(mail(before, "LAB-ANC-3"), hostname="127.0.0.1", port=port, timeout=10)
    async with engine.connect() as connection:
        dropped = await connection.scalar(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = 'trialwatch-smtp-sink' AND datname = current_database()"
            )
        )
    assert dropped and dropped >= 1, "the sink held no connection to drop"
    after, refusals = f"<{uuid.uuid4()}@trialwatch.local>", []
    for _ in range(3):
        try:
            await aiosmtplib.send(mail(after, "LAB-PLT-4"), hostname="127.0.0.1", port=port, timeout=10)
            break
        except aiosmtplib.SMTPDataError as refused:
            refusals.append(refused.code)
    assert refusals in ([], [451]), f"refusals before the message was stored: {refusals}"
    assert (await message_by_id(engine, after) or {}).get("receptions") == 1


def received(message_id: str, subject: str, sender: str = "trialwatch@localhost") -> Received:
    raw = f"Message-ID: {message_id}\r\nSubject: {subject}\r\n\r\nANC 0.8 x10^9/L, grade 3\r\n".encode()
    return Received(sender, ["pi@trial.test"], raw)


async def test_messages_arriving_together_share_a_statement_each_answered_with_its_receptions(
    engine: AsyncEngine,
) -> None:
    """Group commit: 30 senders at once, one of them resending another's Message-ID meanwhile. Each gets
    its own count (the repeat is counted after the first, so 1 then 2), in fewer statements than messages."""
    writer = MessageWriter(engine)
    ids = [f"<{uuid.uuid4()}@trialwatch.local>" for _ in range(29)]
    messages = [received(message_id, f"LAB-ANC-3 #{n}") for n, message_id in enumerate(ids)]
    messages.insert(10, received(ids[3], "LAB-ANC-3 #3"))
    receptions = await asyncio.gather(*(writer.store(message) for message in messages))
    assert receptions == [1] * 10 + [2] + [1] * 19
    assert writer.statements < len(messages)
    stored = await message_by_id(engine, ids[3])
    assert stored is not None and stored["receptions"] == 2 and stored["subject"] == "LAB-ANC-3 #3"
    assert stored["rcpt_tos"] == ["pi@trial.test"] and stored["mail_from"] == "trialwatch@localhost"
    assert stored["raw"] == messages[3].raw


async def test_a_message_postgresql_refuses_fails_alone_not_the_messages_grouped_with_it(engine: AsyncEngine) -> None:
    """A NUL in a text column is refused by PostgreSQL: that sender gets the error (its 451), the others
    of its group are stored."""
    writer = MessageWriter(engine)
    good = [received(f"<{uuid.uuid4()}@trialwatch.local>", "LAB-PLT-4") for _ in range(5)]
    bad = received(f"<{uuid.uuid4()}@trialwatch.local>", "LAB-PLT-4", sender="nul\x00@localhost")
    outcomes = await asyncio.gather(*(writer.store(m) for m in [*good[:2], bad, *good[2:]]), return_exceptions=True)
    assert [isinstance(outcome, Exception) for outcome in outcomes] == [False, False, True, False, False, False]
    assert [outcome for outcome in outcomes if not isinstance(outcome, Exception)] == [1] * 5
    assert await message_by_id(engine, bad.message_id) is None
    for message in good:
        assert (await message_by_id(engine, message.message_id) or {}).get("receptions") == 1
