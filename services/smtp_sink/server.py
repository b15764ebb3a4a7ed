"""The sink process: an aiosmtpd SMTP server and a FastAPI ``/healthz``, in one event loop under uvicorn.

A message is acknowledged (250) only after it is committed; if PostgreSQL is away the sender gets a 451
and retries, so nothing the sink accepted is lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, AnyStr

from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncEngine

from services.smtp_sink.settings import SinkSettings
from services.smtp_sink.store import Received
from services.smtp_sink.writer import MessageWriter
from shared.db import ping
from shared.logs import get_logger

log = get_logger(__name__)
HEALTH_TIMEOUT = 2.0
#: aiosmtpd logs every command at INFO: a tenth of the sink's CPU; kept at DEBUG only.
AIOSMTPD_LOGGER = "mail.log"


class StoringHandler:
    """aiosmtpd handler: every message to PostgreSQL before the 250.

    No log line per message (the message itself is in PostgreSQL; a line each was a tenth of the sink's
    CPU), except at DEBUG; aiosmtpd's own line per command is silenced in ``create_app``.
    """

    def __init__(self, writer: MessageWriter) -> None:
        self._writer = writer
        self._debug = logging.getLogger(__name__).isEnabledFor(logging.DEBUG)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        content = envelope.original_content or b""
        received = Received(str(envelope.mail_from), [str(rcpt) for rcpt in envelope.rcpt_tos], content)
        try:
            receptions = await self._writer.store(received)
        except Exception as error:  # answered with 451: the sender keeps the message and retries
            log.warning("sink.store_failed", error=f"{type(error).__name__}: {error}")
            return "451 Requested action aborted: local error in processing"
        if self._debug:
            log.debug("sink.received", message_id=received.message_id, receptions=receptions)
        return "250 Message accepted for delivery"

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        """Offers PIPELINING (RFC 2920): aiosmtpd reads a command at a time from its buffer, so a group
        is taken in order, and PipeliningSMTP answers it in one write."""
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]]


class PipeliningSMTP(SMTP):
    """aiosmtpd's SMTP, whose replies to a pipelined group go out together (RFC 2920 §3.2: a server
    writes its replies once it has to wait for the client): a reply is held while the next command is
    already buffered, and written with the reply to the last command of the group."""

    _held: list[bytes] | None = None

    async def push(self, status: AnyStr) -> None:
        response = status.encode("utf-8" if self.enable_SMTPUTF8 else "ascii") if isinstance(status, str) else status
        held = self._held = [*(self._held or []), response + b"\r\n"]
        if _next_command_buffered(self._reader):
            return
        self._held = None
        self._writer.write(b"".join(held))
        await self._writer.drain()


def _next_command_buffered(reader: object) -> bool:
    """Whether a whole line waits in aiosmtpd's StreamReader (its ``_buffer``, which aiosmtpd itself
    reads and clears at STARTTLS); unknown counts as no, and the reply is written at once."""
    buffered = getattr(reader, "_buffer", None)
    return isinstance(buffered, bytearray) and b"\n" in buffered


def create_app(settings: SinkSettings, engine: AsyncEngine) -> FastAPI:
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger(AIOSMTPD_LOGGER).setLevel(logging.WARNING)
    handler = StoringHandler(MessageWriter(engine))
    servers: list[asyncio.Server] = []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await ping(engine)
        loop = asyncio.get_running_loop()

        def protocol() -> SMTP:
            return PipeliningSMTP(handler, data_size_limit=settings.max_message_bytes, hostname="trialwatch-smtp-sink")

        servers.append(await loop.create_server(protocol, settings.host, settings.smtp_port))
        log.info("sink.listening", host=settings.host, port=settings.smtp_port)
        try:
            yield
        finally:
            servers[0].close()
            await servers[0].wait_closed()
            await engine.dispose()

    app = FastAPI(title="TrialWatch SMTP sink", lifespan=lifespan, docs_url=None, redoc_url=None)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        checks: dict[str, Any] = {"smtp": "ok" if servers and servers[0].is_serving() else "not listening"}
        try:
            await asyncio.wait_for(ping(engine), timeout=HEALTH_TIMEOUT)
            checks["database"] = "ok"
        except Exception as error:  # a health probe reports the failure instead of raising it
            checks["database"] = f"unreachable: {type(error).__name__}"
        healthy = all(value == "ok" for value in checks.values())
        body = {"service": "smtp_sink", "status": "ok" if healthy else "unavailable", "checks": checks}
        return JSONResponse(body, status_code=200 if healthy else 503)

    return app
