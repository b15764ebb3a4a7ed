"""The two headers the sink keeps (Message-ID, Subject), read as ``email.policy.default`` reads them.

The policy's parser builds a header object for every header of the message: most of the sink's CPU per
message. A plain header section (ASCII, CRLF line ends, ``Name: value`` lines and folded continuations,
no RFC 2047 encoded word) needs none of that: there the policy's value is the text after the colon and
its leading blanks, continuation lines joined without their line breaks. Anything else, and any message
whose header section this reader does not recognise as plain, goes through the policy's parser. Where
that parser fails (it raises on some malformed Message-IDs), the header's unfolded text is kept.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32, default

HEADER_END = b"\r\n\r\n"
#: A header line (RFC 5322 §2.2: field name of printable ASCII but the colon, then a colon) or a folded
#: continuation (starts with a blank); anything else makes the section "not plain".
_LINE = re.compile(rb"[\x21-\x39\x3b-\x7e]+:[\t\x20-\x7e]*|[\t ][\t\x20-\x7e]*")
ENCODED_WORD = "=?"
_LINE_BREAK = re.compile(r"\r|\n")
KEPT = ("message-id", "subject")
#: RFC 5322 §3.6.4's msg-id without comments or folding (``<left@right>``, dot-atoms or a bracketed domain):
#: the policy gives these back unchanged; any other Message-ID goes through its parser.
_DOT_ATOM = rb"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_MSG_ID = re.compile(rb"<" + _DOT_ATOM + rb"@(?:" + _DOT_ATOM + rb"|\[[\x21-\x5a\x5e-\x7e]*\])>")


@dataclass(frozen=True, slots=True)
class KeptHeaders:
    message_id: str | None
    subject: str | None


def kept_headers(raw: bytes) -> KeptHeaders:
    """The first Message-ID and Subject of ``raw`` (None when absent), as ``str()`` of the policy's header."""
    return _plain(raw) or _parsed(raw)


def _parsed(raw: bytes) -> KeptHeaders:
    headers = BytesHeaderParser(policy=default).parsebytes(raw)
    return KeptHeaders(_value(headers, "Message-ID", raw), _value(headers, "Subject", raw))


def _value(headers: Message, name: str, raw: bytes) -> str | None:
    try:
        found = headers.get(name)
    except (HeaderParseError, IndexError):  # Python's parser fails on some malformed values ("<@>")
        unparsed = BytesHeaderParser(policy=compat32).parsebytes(raw).get(name)
        return _LINE_BREAK.sub("", str(unparsed)).lstrip(" \t")
    return None if found is None else str(found)


def _plain(raw: bytes) -> KeptHeaders | None:
    end = raw.find(HEADER_END)
    if end <= 0 or raw.startswith(b"From "):  # no body separator, or a Unix "From " line: the parser's cases
        return None
    lines = raw[:end].split(b"\r\n")
    if not all(_LINE.fullmatch(line) for line in lines) or lines[0][:1] in (b" ", b"\t"):
        return None
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        text = line.decode("ascii")
        if text[0] in " \t":
            if current is not None:
                current.append(text)
            continue
        name, _, value = text.partition(":")
        key, current = name.lower(), None
        if key in KEPT and key not in found:
            current = found[key] = [value.lstrip(" \t")]
    message_id, subject = ("".join(found[key]) if key in found else None for key in KEPT)
    if message_id is not None and not _MSG_ID.fullmatch(message_id.encode("ascii")):
        return None
    if subject is not None and ENCODED_WORD in subject:
        return None
    return KeptHeaders(message_id, subject)
