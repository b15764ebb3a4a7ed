"""A real SMTP server (aiosmtpd) and a real HTTP webhook receiver for the tests, both recording every
message they receive: the independent oracle for "nothing lost, nothing doubled".
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import default
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from services.notifier.domain.webhook_signature import SIGNATURE_HEADER, TIMESTAMP_HEADER, valid


@dataclass(frozen=True)
class Mail:
    message_id: str
    rcpt_tos: tuple[str, ...]
    subject: str
    text: str
    tls: bool = False
    login: str | None = None


@dataclass
class Recorder:
    """aiosmtpd handler: records every message; ``delay`` slows each transaction down (before DATA);
    ``data_delay`` holds the 250 back after the message is recorded, as a server that has committed a
    message and not yet answered (the answer a crash of the sender loses); ``pipelining`` offers RFC
    2920's PIPELINING (aiosmtpd then still writes each reply on its own)."""

    delay: float = 0.0
    data_delay: float = 0.0
    pipelining: bool = False
    received: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]] if self.pipelining else responses

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook, called positionally
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd hook
        parsed = BytesHeaderParser(policy=default).parsebytes(envelope.original_content or b"")
        body = (envelope.original_content or b"").decode(errors="replace")
        login = session.auth_data if isinstance(session.auth_data, str) else None
        recipients = tuple(map(str, envelope.rcpt_tos))
        mail = Mail(str(parsed["Message-ID"]), recipients, str(parsed["Subject"]), body, session.ssl is not None, login)
        with self.lock:
            self.received.append(mail)
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        return "250 Message accepted"

    def by_message_id(self) -> Counter[str]:
        with self.lock:
            return Counter(mail.message_id for mail in self.received)

    def to(self, address: str) -> list[Mail]:
        with self.lock:
            return [mail for mail in self.received if address in mail.rcpt_tos]


class SmtpServer:
    """Start, stop (an outage) and start again on the same port; ``options`` go to aiosmtpd's SMTP
    (``tls_context``, ``require_starttls``, ``authenticator``, ``auth_required``...)."""

    def __init__(self, port: int, recorder: Recorder, **options: Any) -> None:
        self.port = port
        self.recorder = recorder
        self._options = options
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port, **self._options)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@dataclass
class Hook:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)


class WebhookReceiver:
    """A real HTTP server recording each POST; answers ``status`` (settable: 503 for an outage, 410...)
    after ``delay`` seconds (longer than the sender's timeout: an answer that never comes)."""

    def __init__(self, port: int, secret: bytes) -> None:
        self.port = port
        self.secret = secret
        self.status = 200
        self.delay = 0.0
        self.hooks: list[Hook] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.hooks.append(Hook(dict(self.headers.items()), body))
                time.sleep(receiver.delay)
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def signed(self, hook: Hook) -> bool:
        timestamp = int(hook.headers[TIMESTAMP_HEADER])
        return valid(self.secret, timestamp, hook.body, hook.headers[SIGNATURE_HEADER], now=int(time.time()))
