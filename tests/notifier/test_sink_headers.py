"""The SMTP sink's reading of Message-ID and Subject: a plain header section read directly must give what
``email.policy.default``'s parser gives (the sink stored that before), and anything else goes to it."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from services.smtp_sink.headers import KeptHeaders, _parsed, _plain, kept_headers
from services.smtp_sink.store import Received

NAMES = ["Message-ID", "message-id", "Subject", "SUBJECT", "X-Subject"]
VALUES = [
    "<a@b>",
    "<8f14e45f-ceea-567a-9c5d-2b4a3e6f1a2b@trialwatch.local>",
    "<x@[127.0.0.1]>",
    "[URGENT] LAB-ANC-3 study ONC-001 subject 0042",
    "",
    " ",
    "a  b\tc",
    "(comment) <a@b>",
    "<a@b> (c)",
    "<a@b><c@d>",
    '"quoted" <a@b>',
    "x:y:z",
    "=?utf-8?q?caf=C3=A9?=",
    "caf\u00e9",
    "trailing ",
    "<@>",
    "no-brackets@x",
    "x" * 90,
]


def folded(value: str, breaks: list[bool]) -> str:
    spaces = iter(breaks + [False] * len(value))
    return "".join("\r\n " if char == " " and next(spaces) else char for char in value)


header = st.tuples(
    st.sampled_from(NAMES),
    st.sampled_from([": ", ":", ":\t", ":  "]),
    st.sampled_from(VALUES),
    st.lists(st.booleans(), max_size=6),
)


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(
    st.lists(header, max_size=7),
    st.sampled_from(["\r\n", "\r\n", "\r\n", "\n"]),
    st.sampled_from(["", " stray continuation", "Bad line", "From someone", "Name : value"]),
)
def test_the_direct_reading_gives_what_the_email_parser_gives(
    headers: list[tuple[str, str, str, list[bool]]], line_end: str, odd_line: str
) -> None:
    lines = [name + separator + folded(value, breaks) for name, separator, value, breaks in headers]
    if odd_line:
        lines.insert(len(lines) // 2, odd_line)
    raw = (line_end.join(lines) + line_end + line_end + "body: not a header\r\n").encode()
    assert kept_headers(raw) == _parsed(raw)


NOTIFIER_MAIL = (
    b"From: trialwatch@localhost\r\nTo: pi@trial.test\r\n"
    b"Subject: [URGENT] LAB-ANC-3 study ONC-001\r\n subject 0042\r\n"
    b"Message-ID: <8f14e45f-ceea-567a-9c5d-2b4a3e6f1a2b@trialwatch.local>\r\n"
    b'Content-Type: text/plain; charset="utf-8"\r\nMIME-Version: 1.0\r\n\r\nANC 0.8\r\nSubject: not this\r\n'
)


def test_a_plain_message_is_read_directly_its_folded_subject_joined() -> None:
    expected = KeptHeaders(
        "<8f14e45f-ceea-567a-9c5d-2b4a3e6f1a2b@trialwatch.local>", "[URGENT] LAB-ANC-3 study ONC-001 subject 0042"
    )
    assert _plain(NOTIFIER_MAIL) == expected
    assert kept_headers(NOTIFIER_MAIL) == expected


def test_an_encoded_subject_is_decoded_by_the_parser() -> None:
    raw = b"Message-ID: <a@b>\r\nSubject: =?utf-8?q?Grade_3_neutrop=C3=A9nie?=\r\n\r\nbody\r\n"
    assert _plain(raw) is None
    assert kept_headers(raw) == KeptHeaders("<a@b>", "Grade 3 neutropénie")


def test_a_message_id_the_parser_cannot_read_is_kept_as_written() -> None:
    """Python's parser raises on ``<@>``: the sink stores the header's text rather than refusing the
    message with a 451 again on every retry."""
    raw = b"Message-ID: <@>\r\nSubject: LAB-PLT-4\r\n\r\nbody\r\n"
    assert kept_headers(raw) == KeptHeaders("<@>", "LAB-PLT-4")


def test_a_message_without_message_id_is_stored_under_its_content_hash() -> None:
    raw = b"Subject: LAB-PLT-4\r\n\r\nbody\r\n"
    received = Received("trialwatch@localhost", ["pi@trial.test"], raw)
    assert received.message_id == f"<sha256-{hashlib.sha256(raw).hexdigest()}@smtp-sink>"
    assert received.subject == "LAB-PLT-4"
