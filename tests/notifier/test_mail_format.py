"""The e-mail written directly for plain-ASCII messages is, byte for byte, what EmailMessage writes (the
Date aside, which is the time of writing); anything else goes through EmailMessage."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import SMTP, default
from typing import Any, cast

import pytest

from services.notifier.adapters.mail_format import ascii_email, email_message
from services.notifier.adapters.tables import Delivery

SENDER = "trialwatch@localhost"
LINK = "Acknowledge:     http://127.0.0.1:8083/v1/ack/" + "eyJhIjoiYWxlcnQtMSJ9" * 8


def delivery(text: str, subject: str = "[TrialWatch URGENT] URGENT LAB-ANC-3 ANAKINRA-AD AD-003") -> Delivery:
    row: Any = Delivery(
        id=42,
        recipient="safety.officer@example.org",
        message={"subject": subject, "text": text, "body": {}},
        message_id="<delivery-1@trialwatch.local>",
        alert_ids=["alert-1"],
    )
    return cast(Delivery, row)


def without_date(raw: bytes) -> bytes:
    date = message_from_bytes(raw, policy=default)["Date"]
    return raw.replace(f"Date: {date}".encode(), b"Date: -")


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Rule: LAB-ANC-3 (URGENT)\nParticipant: AD-003\n", "7bit"),
        (f"Rule: LAB-ANC-3 (URGENT)\n{LINK}\n", "quoted-printable"),
        ("a=b, trailing space \n" + "x" * 100 + "\n", "quoted-printable"),
    ],
)
def test_an_ascii_message_is_written_as_email_message_writes_it(text: str, encoding: str) -> None:
    fast = ascii_email(delivery(text), SENDER)
    assert fast is not None
    assert without_date(fast) == without_date(email_message(delivery(text), SENDER).as_bytes(policy=SMTP))
    parsed = message_from_bytes(fast, policy=default)
    assert parsed["Content-Transfer-Encoding"] == encoding
    assert parsed.get_content().replace("\r\n", "\n") == text


@pytest.mark.parametrize(
    ("text", "subject"),
    [
        ("Platelets \u2265 25\n", "[TrialWatch] x"),
        ("plain\n", "[TrialWatch] caf\u00e9"),
        ("plain\n", "[TrialWatch] " + "long subject " * 6),
        ("plain\n", "[TrialWatch] x\r\nBcc: someone@example.org"),
    ],
)
def test_anything_but_plain_ascii_with_short_headers_is_left_to_email_message(text: str, subject: str) -> None:
    assert ascii_email(delivery(text, subject), SENDER) is None
