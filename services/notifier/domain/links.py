"""Signed, expiring acknowledgement links: an HMAC-SHA256 token over alert id, role, recipient and expiry.

``<base64url(json claims)>.<base64url(hmac)>``; the key is derived from TRIALWATCH_HMAC_SECRET for this
one purpose, so a webhook signature can never be replayed as a link (or the reverse).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from services.notifier.domain.model import ROLES, Role

LINK_KEY_CONTEXT = b"trialwatch/ack-link/v1"


class LinkError(ValueError):
    """The link cannot acknowledge anything; ``reason`` is one of malformed, signature, expired."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"acknowledgement link refused: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class AckClaim:
    alert_id: str
    role: Role
    recipient: str
    expires_at: datetime


def link_key(secret: bytes) -> bytes:
    return hmac.new(secret, LINK_KEY_CONTEXT, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_link(key: bytes, claim: AckClaim) -> str:
    body = orjson.dumps(
        {"a": claim.alert_id, "r": claim.role, "u": claim.recipient, "x": int(claim.expires_at.timestamp())}
    )
    return f"{_b64(body)}.{_b64(hmac.new(key, body, hashlib.sha256).digest())}"


def _claims(token: str, key: bytes) -> dict[str, object]:
    head, dot, tail = token.partition(".")
    try:
        body, signature = _unb64(head), _unb64(tail)
    except ValueError:
        raise LinkError("malformed") from None
    if not dot or not hmac.compare_digest(signature, hmac.new(key, body, hashlib.sha256).digest()):
        raise LinkError("signature")
    claims = orjson.loads(body)
    if not isinstance(claims, dict):
        raise LinkError("malformed")
    return claims


def verify_link(key: bytes, token: str, now: datetime) -> AckClaim:
    claims = _claims(token, key)
    alert_id, role, recipient, expiry = (claims.get(k) for k in ("a", "r", "u", "x"))
    if not (isinstance(alert_id, str) and isinstance(recipient, str) and isinstance(expiry, int)):
        raise LinkError("malformed")
    if role not in ROLES:
        raise LinkError("malformed")
    expires_at = datetime.fromtimestamp(expiry, UTC)
    if now >= expires_at:
        raise LinkError("expired")
    return AckClaim(alert_id, role, recipient, expires_at)
