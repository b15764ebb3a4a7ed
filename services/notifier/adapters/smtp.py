"""E-mail over SMTP (aiosmtplib): STARTTLS, implicit TLS, a private CA and authentication are configuration.

The Message-ID is the delivery's, fixed when it was queued. The point of no return is the end of data:
MAIL FROM, RCPT TO and DATA leave nothing at the server, which accepts a message only at the final dot,
so the in-doubt marker is committed after DATA's 354, just before the content and its final dot are
written. A reply code is definite at any point (4xx transient, 5xx permanent: not delivered); a
connection lost or timed out after the content was written leaves the message in doubt. Connection
problems before it are transient.

When the server offers PIPELINING (RFC 2920), MAIL, RCPT and DATA go in one write and their replies are
read together (smtp_pipelining.py); the marker then follows the 354 as before.

A connection is kept after a message was accepted and used for the next one (up to
``MESSAGES_PER_CONNECTION``; hung up once idle for ``LINGER_SECONDS``, checked after each round of the
sender that found nothing to send): connecting, greeting, STARTTLS and authentication once, not per
message. A kept connection the server closed meanwhile fails before the point of no return; the message
then goes over a new one at once.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Literal

import aiosmtplib
from aiosmtplib.email import quote_address
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from aiosmtplib.response import SMTPResponse
from aiosmtplib.typing import Default, SMTPStatus

from services.notifier.adapters.channels import (
    InDoubtDeliveryError,
    PermanentDeliveryError,
    PointOfNoReturn,
    TransientDeliveryError,
)
from services.notifier.adapters.mail_format import ascii_email, email_message
from services.notifier.adapters.smtp_pipelining import ReplyTap
from services.notifier.adapters.tables import Delivery
from services.notifier.settings import SmtpSettings

PERMANENT_FROM = 500
QUIT_TIMEOUT = 1.0
REPLIES_AFTER_THE_MARKER = 1  # the answer to the end of data
ACCEPTED_RECIPIENT = (250, 251)
LINGER_SECONDS = 5.0
MESSAGES_PER_CONNECTION = 100


class _MarkingClient(aiosmtplib.SMTP):
    """An SMTP client that commits the in-doubt marker after DATA's 354 and just before the message content
    (the end of data follows it in the same write), and knows whether it did.

    aiosmtplib's ``data`` sends DATA and the content in one step; this is the same step with the marker
    in between (aiosmtplib's own line-ending normalisation and dot-stuffing), so that the residual window
    holds no network round trip: only the marker's commit returning and the write.
    """

    def __init__(self, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self._point_of_no_return: PointOfNoReturn | None = None
        self.passed_point_of_no_return = False
        self._tap: ReplyTap | None = None

    def next_message(self, point_of_no_return: PointOfNoReturn) -> None:
        self._point_of_no_return = point_of_no_return
        self.passed_point_of_no_return = False

    def tap_replies(self) -> None:
        """Once connected (after STARTTLS): puts a ReplyTap between the transport and the protocol."""
        if self.transport is not None and self.protocol is not None:
            self._tap = ReplyTap(self.protocol)
            self.transport.set_protocol(self._tap)

    async def greeted(self) -> bool:
        """EHLO (or HELO) done if it was not; whether the envelope can be pipelined."""
        await self._ehlo_or_helo_if_needed()
        return self._tap is not None and self.supports_extension("pipelining")

    async def send_pipelined(self, sender: str, recipient: str, message: bytes) -> SMTPResponse:
        """``sendmail`` for one recipient, its envelope pipelined: MAIL, RCPT and DATA in one write."""
        protocol, tap = self.protocol, self._tap
        if protocol is None or tap is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        content = normalize_message_line_endings(message)
        size = f" SIZE={len(content)}" if self.supports_extension("size") else ""
        group = f"MAIL FROM:{quote_address(sender)}{size}\r\nRCPT TO:{quote_address(recipient)}\r\nDATA\r\n"
        replies = tap.expect(3)
        try:
            protocol.write(group.encode("ascii"))
            mail, rcpt, data = await asyncio.wait_for(replies, timeout=self.timeout)
        except TimeoutError as error:
            self.close()
            raise aiosmtplib.SMTPReadTimeoutError("Timed out waiting for the pipelined replies") from error
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPResponseException):
            self.close()
            raise
        finally:
            tap.release()
        if mail.code != SMTPStatus.completed or rcpt.code not in ACCEPTED_RECIPIENT:
            if data.code == SMTPStatus.start_input:
                self.close()  # DATA taken all the same: hung up without the end of data, the server keeps nothing
            if mail.code != SMTPStatus.completed:
                raise aiosmtplib.SMTPSenderRefused(mail.code, mail.message, sender)
            raise aiosmtplib.SMTPRecipientsRefused(
                [aiosmtplib.SMTPRecipientRefused(rcpt.code, rcpt.message, recipient)]
            )
        if data.code != SMTPStatus.start_input:
            raise aiosmtplib.SMTPDataError(data.code, data.message)
        return await self._end_of_data(content, self.timeout)

    async def data(
        self,
        message: str | bytes,
        /,
        *,
        timeout: float | Literal[Default.token] | None = Default.token,  # noqa: ASYNC109 - aiosmtplib's signature
    ) -> SMTPResponse:
        protocol = self.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        wait = self.timeout if timeout is Default.token else timeout
        content = message.encode("ascii") if isinstance(message, str) else message
        try:
            start = await protocol.execute_command(b"DATA", timeout=wait)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
            self.close()
            raise
        if start.code != SMTPStatus.start_input:
            raise aiosmtplib.SMTPDataError(start.code, start.message)
        return await self._end_of_data(normalize_message_line_endings(content), wait)

    async def _end_of_data(self, content: bytes, wait: float | None) -> SMTPResponse:
        """After DATA's 354: the marker, then the content and its final dot (aiosmtplib's dot-stuffing)."""
        protocol = self.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        stuffed = PERIOD_REGEX.sub(b"..", content) + b".\r\n"
        try:
            try:
                if self._point_of_no_return is None:
                    raise RuntimeError("no point-of-no-return marker for this message")
                await self._point_of_no_return()
            except BaseException:
                self.close()  # mid-DATA without the end of data: the server discards what it has
                raise
            self.passed_point_of_no_return = True
            protocol.write(stuffed)
            response = await protocol.read_response(timeout=wait)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError):
            self.close()
            raise
        if response.code != SMTPStatus.completed:
            raise aiosmtplib.SMTPDataError(response.code, response.message)
        return response


class _StaleConnectionError(Exception):
    """A kept connection failed before anything of the message could be accepted."""


@dataclass(frozen=True)
class Outgoing:
    recipient: str
    content: EmailMessage | bytes


@dataclass
class _Kept:
    client: _MarkingClient
    messages: int
    idle_since: float


class SmtpSender:
    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings
        self._kept: list[_Kept] = []
        self._hostname: str | None = None

    @property
    def longest_wait_after_the_point_of_no_return(self) -> float:
        return self._settings.timeout * REPLIES_AFTER_THE_MARKER + QUIT_TIMEOUT

    def _client(self) -> _MarkingClient:
        settings = self._settings
        if self._hostname is None:  # aiosmtplib would look it up (a DNS query) for every connection
            self._hostname = socket.getfqdn()
        return _MarkingClient(
            hostname=settings.host,
            port=settings.port,
            local_hostname=self._hostname,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            start_tls=settings.starttls,
            use_tls=settings.implicit_tls,
            cert_bundle=str(settings.ca_file) if settings.ca_file else None,
            timeout=settings.timeout,
        )

    async def send(self, delivery: Delivery, point_of_no_return: PointOfNoReturn) -> str:
        """Returns the server's reply to the end of data (250 ...)."""
        sender = self._settings.sender
        message = Outgoing(delivery.recipient, ascii_email(delivery, sender) or email_message(delivery, sender))
        while self._kept:
            kept = self._kept.pop()
            try:
                return await self._send(kept, message, point_of_no_return)
            except _StaleConnectionError:
                continue
        kept = _Kept(self._client(), 0, time.monotonic())
        try:
            await kept.client.connect()
        except (aiosmtplib.SMTPException, OSError) as error:
            await _hang_up(kept.client)
            raise _classified(error, kept.client) from error
        kept.client.tap_replies()
        return await self._send(kept, message, point_of_no_return)

    async def _send(self, kept: _Kept, message: Outgoing, point_of_no_return: PointOfNoReturn) -> str:
        client, reused = kept.client, kept.messages > 0
        client.next_message(point_of_no_return)
        try:
            _, reply = await self._transmit(client, message)
        except (aiosmtplib.SMTPServerDisconnected, ConnectionError) as error:
            await _hang_up(client)
            if reused and not client.passed_point_of_no_return:
                raise _StaleConnectionError from error
            raise _classified(error, client) from error
        except (aiosmtplib.SMTPException, OSError) as error:
            await _hang_up(client)
            raise _classified(error, client) from error
        except BaseException:
            await _hang_up(client)
            raise
        kept.messages, kept.idle_since = kept.messages + 1, time.monotonic()
        if kept.messages < MESSAGES_PER_CONNECTION:
            self._kept.append(kept)
        else:
            await _hang_up(client)
        return f"250 {reply}"

    async def _transmit(self, client: _MarkingClient, message: Outgoing) -> tuple[object, str]:
        if isinstance(message.content, bytes):  # plain ASCII: the envelope is the message's From and To
            if await client.greeted():
                reply = await client.send_pipelined(self._settings.sender, message.recipient, message.content)
                return {}, reply.message
            return await client.sendmail(self._settings.sender, [message.recipient], message.content)
        return await client.send_message(message.content)

    async def rest(self) -> None:
        """Nothing more to send for now: hangs up the connections idle for ``LINGER_SECONDS``."""
        now, kept = time.monotonic(), self._kept
        self._kept = [k for k in kept if now - k.idle_since < LINGER_SECONDS and k.client.is_connected]
        for idle in (k for k in kept if k not in self._kept):
            await _hang_up(idle.client)


def _classified(error: Exception, client: _MarkingClient) -> Exception:
    """What a failed attempt means for the delivery (see the module)."""
    if isinstance(error, aiosmtplib.SMTPResponseException):
        kind = PermanentDeliveryError if error.code >= PERMANENT_FROM else TransientDeliveryError
        return kind(f"SMTP {error.code}: {error.message}")
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [refusal.code for refusal in error.recipients]
        kind = PermanentDeliveryError if min(codes, default=0) >= PERMANENT_FROM else TransientDeliveryError
        return kind(f"SMTP recipients refused: {error}")
    if client.passed_point_of_no_return:
        return InDoubtDeliveryError(f"SMTP {type(error).__name__} after the end of data: {error}")
    return TransientDeliveryError(f"SMTP {type(error).__name__}: {error}")


async def _hang_up(client: aiosmtplib.SMTP) -> None:
    """QUIT, briefly: the outcome is known already, and the lease must outlast the wait after the end of data."""
    if not client.is_connected:
        return
    try:
        await client.quit(timeout=QUIT_TIMEOUT)
    except (aiosmtplib.SMTPException, OSError):
        client.close()
