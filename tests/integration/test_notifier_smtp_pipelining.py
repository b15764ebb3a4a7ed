"""SMTP command pipelining (RFC 2920) between the notifier's sender and a server that offers it (the SMTP
sink's PipeliningSMTP, in this event loop, storing into PostgreSQL, or answering as a test needs):
MAIL, RCPT and DATA in one write, their replies in one, the point-of-no-return marker still after the 354
and before the content; a refusal of the envelope is the same outcome as without pipelining."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import AnyStr

import pytest
import pytest_asyncio
from aiosmtpd.smtp import SMTP, Envelope, Session
from safety_rules_service.live_rig import create_database, drop_database, free_port
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.notifier.adapters.channels import PermanentDeliveryError, TransientDeliveryError
from services.notifier.adapters.smtp import SmtpSender
from services.notifier.adapters.tables import Delivery
from services.notifier.settings import SmtpSettings
from services.smtp_sink.server import PipeliningSMTP, StoringHandler, _next_command_buffered
from services.smtp_sink.store import message_by_id
from services.smtp_sink.writer import MessageWriter
from trialwatch.devstack.settings import Settings

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(loop_scope="session")
async def engine(stack_settings: Settings) -> AsyncIterator[AsyncEngine]:
    name = f"it_pipe_{uuid.uuid4().hex[:10]}"
    url = await asyncio.to_thread(create_database, stack_settings, name)
    engine = create_async_engine(url)
    yield engine
    await engine.dispose()
    await asyncio.to_thread(drop_database, stack_settings, name)


class Refusing(StoringHandler):
    """The sink's handler, refusing the recipients of ``refused`` with their reply."""

    def __init__(self, writer: MessageWriter, refused: dict[str, str]) -> None:
        super().__init__(writer)
        self.refused = refused

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refused:
            return self.refused[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"


class CountingSMTP(PipeliningSMTP):
    """Counts the replies held back because the next command of a pipelined group had arrived with it."""

    held_back = 0

    async def push(self, status: AnyStr) -> None:
        if _next_command_buffered(self._reader):
            CountingSMTP.held_back += 1
        await super().push(status)


class Server:
    """PipeliningSMTP on a port of its own; ``stop`` closes it and every connection (an outage)."""

    def __init__(self, handler: StoringHandler) -> None:
        self.handler, self.port = handler, free_port()
        self._server: asyncio.Server | None = None
        self.sessions: list[CountingSMTP] = []

    async def start(self) -> None:
        def protocol() -> CountingSMTP:
            session = CountingSMTP(self.handler, hostname="pipelining-test")
            self.sessions.append(session)
            return session

        self._server = await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for session in self.sessions:
                if session.transport is not None:
                    session.transport.close()
            await self._server.wait_closed()
            self._server = None


def handler_for(engine: AsyncEngine, refused: dict[str, str] | None = None) -> Refusing:
    return Refusing(MessageWriter(engine), refused or {})


def delivery(number: int, recipient: str = "pi@trial.test") -> Delivery:
    return Delivery(
        id=number,
        recipient=recipient,
        message_id=f"<{uuid.uuid4()}@trialwatch.local>",
        alert_ids=[f"alert-{number}"],
        message={"subject": f"[URGENT] LAB-ANC-3 #{number}", "text": "ANC 0.8 x10^9/L, grade 3\n", "body": {}},
    )


def smtp_settings(port: int) -> SmtpSettings:
    return SmtpSettings.model_validate({"TRIALWATCH_SMTP_PORT": port, "TRIALWATCH_SMTP_TIMEOUT": 5.0})


class Marker:
    """The point-of-no-return marker: records, for each call, whether the sink held the message yet."""

    def __init__(self, engine: AsyncEngine, message_id: str) -> None:
        self.engine, self.message_id, self.stored_at_call = engine, message_id, list[bool]()

    async def __call__(self) -> None:
        self.stored_at_call.append(await message_by_id(self.engine, self.message_id) is not None)


async def test_the_envelope_goes_in_one_write_and_the_marker_precedes_the_content(engine: AsyncEngine) -> None:
    server = Server(handler_for(engine))
    await server.start()
    sender = SmtpSender(smtp_settings(server.port))
    CountingSMTP.held_back = 0
    try:
        for number in range(3):
            item = delivery(number)
            marker = Marker(engine, item.message_id)
            assert (await sender.send(item, marker)).startswith("250 ")
            assert marker.stored_at_call == [False]  # marked once, before the sink had anything of it
            stored = await message_by_id(engine, item.message_id)
            assert stored is not None and stored["receptions"] == 1
            assert stored["raw"].startswith(b"From: trialwatch@localhost\r\n")
            assert stored["subject"] == f"[URGENT] LAB-ANC-3 #{number}"
        assert len(server.sessions) == 1, "one kept connection for the three messages"
        assert CountingSMTP.held_back == 2 * 3, "MAIL's and RCPT's replies held for DATA's, for each message"
    finally:
        await sender.rest()
        await server.stop()


async def test_the_sink_answers_a_pipelined_group_in_one_write(engine: AsyncEngine) -> None:
    """RFC 2920 §3.2: MAIL's and RCPT's replies wait for DATA's, and the three arrive as one read."""
    server = Server(handler_for(engine))
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        assert (await reader.readline()).startswith(b"220 ")
        writer.write(b"EHLO client.test\r\n")
        offered = [await reader.readline()]
        while offered[-1][3:4] == b"-":
            offered.append(await reader.readline())
        assert b"250-PIPELINING\r\n" in offered
        writer.write(b"MAIL FROM:<trialwatch@localhost>\r\nRCPT TO:<pi@trial.test>\r\nDATA\r\n")
        first = await asyncio.wait_for(reader.read(65536), timeout=5)
        assert first.split(b"\r\n")[:3] == [b"250 OK", b"250 OK", b"354 End data with <CR><LF>.<CR><LF>"]
        message_id = f"<{uuid.uuid4()}@trialwatch.local>"
        writer.write(f"Message-ID: {message_id}\r\nSubject: LAB-PLT-4\r\n\r\nbody\r\n.\r\n".encode())
        assert (await reader.readline()).startswith(b"250 ")
        assert (await message_by_id(engine, message_id) or {}).get("receptions") == 1
    finally:
        writer.close()
        await server.stop()


@pytest.mark.parametrize(
    ("reply", "outcome"),
    [("550 5.1.1 no such user", PermanentDeliveryError), ("451 4.3.0 try again later", TransientDeliveryError)],
)
async def test_a_refused_recipient_is_the_same_outcome_and_nothing_is_marked(
    engine: AsyncEngine, reply: str, outcome: type[Exception]
) -> None:
    server = Server(handler_for(engine, {"nobody@trial.test": reply}))
    await server.start()
    sender = SmtpSender(smtp_settings(server.port))
    try:
        refused = delivery(1, "nobody@trial.test")
        marker = Marker(engine, refused.message_id)
        with pytest.raises(outcome, match=reply[:3]):
            await sender.send(refused, marker)
        assert marker.stored_at_call == []
        assert await message_by_id(engine, refused.message_id) is None
        accepted = delivery(2)
        assert (await sender.send(accepted, Marker(engine, accepted.message_id))).startswith("250 ")
    finally:
        await sender.rest()
        await server.stop()


async def test_a_kept_connection_the_server_closed_sends_over_a_new_one(engine: AsyncEngine) -> None:
    server = Server(handler_for(engine))
    await server.start()
    sender = SmtpSender(smtp_settings(server.port))
    try:
        first = delivery(1)
        await sender.send(first, Marker(engine, first.message_id))
        await server.stop()  # the kept connection is closed by the server
        await server.start()
        second = delivery(2)
        marker = Marker(engine, second.message_id)
        assert (await sender.send(second, marker)).startswith("250 ")
        assert marker.stored_at_call == [False]
        assert (await message_by_id(engine, second.message_id) or {}).get("receptions") == 1
    finally:
        await sender.rest()
        await server.stop()
