"""HL7 v2.5.1 original-mode acknowledgements: one ``ACK^R01`` per received message.

The ACK's MSH swaps the sender and receiver of the message (MSH-3/4 <-> MSH-5/6) and echoes its
processing id and version; ``MSA`` carries the code and the message's control id (MSH-10). A rejected
message gets ``AE`` (its content is wrong) or ``AR`` (its header cannot be processed, or the message
could not be stored) and an ``ERR`` segment: ERR-2 where, ERR-3 the HL7 table 0357 code, ERR-4 ``E``,
ERR-8 the reason naming the record and the field. Inbound fields are re-encoded into the standard
delimiters, so a sender with unusual encoding characters still gets a well-formed ACK.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

AckCode = Literal["AA", "AE", "AR"]

STANDARD_DELIMITERS = "|^~\\&"
#: HL7 table 0357 (message error condition codes) used by TrialWatch.
ERROR_NAMES = {
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "104": "Value too long",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "207": "Application internal error",
}
MAX_TEXT = 1000
_ESCAPES = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "&": "\\T\\", "~": "\\R\\", "\r": " ", "\n": " "}


@dataclass(frozen=True, slots=True)
class Verdict:
    """How a message is answered; ``error_code`` is from table 0357, ``location`` an ERL (``PID^1^3``)."""

    code: AckCode
    error: str = ""
    error_code: str = ""
    location: str = ""


ACCEPTED = Verdict("AA")


def escape(text: str) -> str:
    """Text for an ER7 field with the standard delimiters (HL7 escape sequences)."""
    return "".join(_ESCAPES.get(char, char) for char in text)


@dataclass(frozen=True, slots=True)
class InboundHeader:
    """The MSH of a received message, re-encoded; ``field(n)`` is MSH-n (n >= 2)."""

    parts: tuple[str, ...]

    def field(self, number: int) -> str:
        index = number - 1
        return self.parts[index] if index < len(self.parts) else ""


def _decode(message: bytes) -> str:
    try:
        return message.decode("utf-8")
    except UnicodeDecodeError:
        return message.decode("latin-1")


def _translation(field_sep: str, encoding: str) -> dict[int, str]:
    """Inbound delimiters -> standard ones; a standard delimiter that is data here gets escaped."""
    table = {ord(char): escape(char) for char in STANDARD_DELIMITERS}
    inbound = field_sep + encoding[:4]
    for theirs, ours in zip(inbound, STANDARD_DELIMITERS[: len(inbound)], strict=True):
        table[ord(theirs)] = ours
    return table


def read_header(message: bytes) -> InboundHeader | None:
    """The message's MSH, or None when the message does not start with a readable one."""
    text = _decode(message).lstrip(" \t\r\n\x0b")
    segment = text.split("\r", 1)[0].split("\n", 1)[0]
    if not segment.startswith("MSH") or len(segment) < 8:
        return None
    field_sep = segment[3]
    parts = segment.split(field_sep)
    encoding = parts[1]
    if len(encoding) < 2 or field_sep in encoding:
        return None
    if field_sep + encoding[:4] != STANDARD_DELIMITERS[: len(encoding[:4]) + 1]:
        table = _translation(field_sep, encoding)
        parts = [parts[0], "^~\\&", *(part.translate(table) for part in parts[2:])]
    return InboundHeader(tuple(parts))


@functools.lru_cache(maxsize=2)  # a burst's ACKs share their time: formatted once (strftime is half an ACK)
def hl7_now(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")


def build_ack(header: InboundHeader | None, verdict: Verdict, *, now: datetime, control_id: str) -> bytes:
    """The ER7 ACK (segments terminated by ``\\r``, not yet MLLP-framed)."""
    msh = InboundHeader(()) if header is None else header
    fields = [
        "MSH",
        "^~\\&",
        msh.field(5) or "TRIALWATCH",
        msh.field(6),
        msh.field(3),
        msh.field(4),
        hl7_now(now),
        "",
        "ACK^R01^ACK",
        escape(control_id),
        msh.field(11) or "P",
        msh.field(12) or "2.5.1",
    ]
    segments = ["|".join(fields), f"MSA|{verdict.code}|{msh.field(10)}"]
    if verdict.code != "AA":
        code = verdict.error_code or "207"
        name = ERROR_NAMES.get(code, "")
        text = escape(verdict.error[:MAX_TEXT])
        segments.append(f"ERR||{verdict.location}|{code}^{name}^HL70357|E||||{text}")
    return ("\r".join(segments) + "\r").encode("utf-8")
