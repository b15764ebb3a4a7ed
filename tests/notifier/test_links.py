"""Signed, expiring acknowledgement links and webhook signatures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.notifier.domain.links import AckClaim, LinkError, link_key, sign_link, verify_link
from services.notifier.domain.webhook_signature import signature, signed_headers, valid

KEY = link_key(b"s" * 32)
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CLAIM = AckClaim("alert-1", "investigator", "pi@site.test", NOW + timedelta(hours=72))


def test_a_link_carries_alert_role_recipient_and_expiry() -> None:
    assert verify_link(KEY, sign_link(KEY, CLAIM), NOW) == CLAIM


def test_an_expired_link_is_refused_as_expired() -> None:
    token = sign_link(KEY, CLAIM)
    with pytest.raises(LinkError) as refusal:
        verify_link(KEY, token, NOW + timedelta(hours=72))
    assert refusal.value.reason == "expired"


def test_a_link_with_an_edited_role_is_refused() -> None:
    body, signature_part = sign_link(KEY, CLAIM).split(".")
    forged = sign_link(KEY, AckClaim("alert-1", "dsmb_chair", "pi@site.test", CLAIM.expires_at)).split(".")[0]
    with pytest.raises(LinkError) as refusal:
        verify_link(KEY, f"{forged}.{signature_part}", NOW)
    assert refusal.value.reason == "signature"
    assert body != forged


def test_a_link_signed_with_another_secret_is_refused() -> None:
    with pytest.raises(LinkError, match="signature"):
        verify_link(link_key(b"t" * 32), sign_link(KEY, CLAIM), NOW)


@pytest.mark.parametrize("token", ["", "abc", "a.b.c", "!!!.???"])
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(LinkError):
        verify_link(KEY, token, NOW)


def test_the_link_key_differs_from_the_webhook_secret() -> None:
    assert link_key(b"s" * 32) != b"s" * 32


def test_webhook_signature_covers_timestamp_and_body() -> None:
    secret, body = b"k" * 32, b'{"a":1}'
    headers = signed_headers(secret, 1_700_000_000, body, "<id@x>")
    presented = headers["X-TrialWatch-Signature"]
    assert presented == signature(secret, 1_700_000_000, body) and presented.startswith("sha256=")
    assert valid(secret, 1_700_000_000, body, presented, now=1_700_000_100)
    assert not valid(secret, 1_700_000_000, body + b" ", presented, now=1_700_000_100)
    assert not valid(secret, 1_700_000_001, body, presented, now=1_700_000_100)
    assert not valid(secret, 1_700_000_000, body, presented, now=1_700_001_000)
