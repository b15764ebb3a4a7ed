"""SMTP command pipelining (RFC 2920) for the envelope: MAIL, RCPT and DATA in one write, their three
replies read together, where each command was a round trip of its own (a write and a wake-up on both
sides, per e-mail: a fifth of the sink's CPU and a tenth of the sender's).

aiosmtplib sends one command and reads one reply at a time, and drops what the server sends while no
command waits for it: the second and third replies of a pipelined group would be lost when they arrive
in a packet of their own. So a ``ReplyTap`` stands between the connection's transport and aiosmtplib's
protocol: it hands every byte on to the protocol, except while a pipelined group's replies are awaited,
when it parses them itself (RFC 5321 §4.2: ``NNN-text`` lines continue a reply, ``NNN text`` ends it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiosmtplib import SMTPResponseException, SMTPServerDisconnected
from aiosmtplib.protocol import SMTPProtocol
from aiosmtplib.response import SMTPResponse

#: The most a group's replies may hold (aiosmtplib allows as much for one reply, line by line 8 kB).
MAX_REPLIES_BYTES = 64 * 1024
INVALID_RESPONSE = -1


@dataclass
class _Awaited:
    count: int
    done: asyncio.Future[list[SMTPResponse]]
    buffer: bytearray = field(default_factory=bytearray)
    replies: list[SMTPResponse] = field(default_factory=list)


class ReplyTap(asyncio.Protocol):
    """The transport's protocol in place of aiosmtplib's, which it serves except while ``replies`` waits."""

    def __init__(self, inner: SMTPProtocol) -> None:
        self._inner = inner
        self._awaited: _Awaited | None = None

    def expect(self, count: int) -> asyncio.Future[list[SMTPResponse]]:
        """Call before writing the group: its ``count`` replies, in order, once all have come."""
        done: asyncio.Future[list[SMTPResponse]] = asyncio.get_running_loop().create_future()
        self._awaited = _Awaited(count, done)
        return done

    def release(self) -> None:
        """Back to aiosmtplib's protocol (also after a failure: the connection is then closed)."""
        self._awaited = None

    def data_received(self, data: bytes) -> None:
        awaited = self._awaited
        if awaited is None or awaited.done.done():
            self._inner.data_received(data)
            return
        awaited.buffer.extend(data)
        try:
            _parse(awaited)
        except SMTPResponseException as error:
            awaited.done.set_exception(error)
            return
        if len(awaited.replies) >= awaited.count:
            awaited.done.set_result(awaited.replies[: awaited.count])

    def eof_received(self) -> bool | None:
        self._fail("Unexpected EOF received")
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail("Connection lost")
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def _fail(self, reason: str) -> None:
        if self._awaited is not None and not self._awaited.done.done():
            self._awaited.done.set_exception(SMTPServerDisconnected(reason))


def _parse(awaited: _Awaited) -> None:
    """Moves the complete replies at the start of the buffer to ``replies``."""
    if len(awaited.buffer) > MAX_REPLIES_BYTES:
        raise SMTPResponseException(INVALID_RESPONSE, "Pipelined replies too long")
    lines: list[bytes] = []
    start = 0
    while (end := awaited.buffer.find(b"\n", start)) >= 0:
        line = bytes(awaited.buffer[start : end + 1])
        start = end + 1
        if not line[:3].isdigit():
            raise SMTPResponseException(INVALID_RESPONSE, f"Malformed SMTP response line: {line!r}")
        lines.append(line)
        if line[3:4] != b"-":
            text = b"\n".join(part[4:].strip(b" \t\r\n") for part in lines)
            awaited.replies.append(SMTPResponse(int(line[:3]), text.decode("utf-8", "surrogateescape")))
            del awaited.buffer[:start]
            lines, start = [], 0
