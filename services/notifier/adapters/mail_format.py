"""The e-mail of a delivery.

Python's ``EmailMessage`` parses every header it is given through its header registry: about a millisecond
a message, most of the sender's CPU once connections are kept. Nearly every message is plain ASCII with
short headers, and for those the bytes are written directly, as ``EmailMessage`` writes them (text lines
up to 78 characters 7bit, longer ones, as the acknowledgement link's, quoted-printable). Anything else
(a non-ASCII character, a long or multi-line header value) goes through ``EmailMessage``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email import quoprimime
from email.message import EmailMessage
from email.utils import format_datetime

from services.notifier.adapters.tables import Delivery

MAX_LINE = 78  # RFC 5322 §2.1.1's SHOULD, EmailMessage's default policy


def _headers(delivery: Delivery, sender: str) -> list[tuple[str, str]]:
    return [
        ("From", sender),
        ("To", delivery.recipient),
        ("Subject", delivery.message["subject"]),
        ("Message-ID", delivery.message_id),
        ("Date", format_datetime(datetime.now(UTC))),
        ("X-TrialWatch-Delivery", str(delivery.id)),
        ("X-TrialWatch-Alerts", ", ".join(delivery.alert_ids)),
    ]


def email_message(delivery: Delivery, sender: str) -> EmailMessage:
    message = EmailMessage()
    for name, value in _headers(delivery, sender):
        message[name] = value
    message.set_content(delivery.message["text"])
    return message


def _plain(name: str, value: str) -> bool:
    return value.isascii() and len(name) + 2 + len(value) <= MAX_LINE and "\r" not in value and "\n" not in value


def _ascii_bytes(headers: list[tuple[str, str]], text: str) -> bytes | None:
    if not text.isascii() or not all(_plain(name, value) for name, value in headers):
        return None
    lines = text.splitlines()
    body = "\n".join(lines) + "\n"
    if max(map(len, lines), default=0) <= MAX_LINE:
        encoding = "7bit"
    else:
        encoding, body = "quoted-printable", quoprimime.body_encode(body, MAX_LINE)
    content = [
        ("Content-Type", 'text/plain; charset="utf-8"'),
        ("Content-Transfer-Encoding", encoding),
        ("MIME-Version", "1.0"),
    ]
    head = "".join(f"{name}: {value}\r\n" for name, value in headers + content)
    return (head + "\r\n" + body.replace("\n", "\r\n")).encode("ascii")


def ascii_email(delivery: Delivery, sender: str) -> bytes | None:
    """The message as SMTP carries it (CRLF line ends), byte for byte as ``email_message`` renders it;
    None unless it is plain ASCII with short single-line headers."""
    return _ascii_bytes(_headers(delivery, sender), delivery.message["text"])
