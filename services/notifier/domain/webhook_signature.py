"""Webhook signatures: HMAC-SHA256 over ``<timestamp>.<body>`` (the Stripe/Slack scheme).

Headers: ``X-TrialWatch-Timestamp`` (unix seconds) and ``X-TrialWatch-Signature: sha256=<hex>``. A receiver
recomputes the HMAC with the shared TRIALWATCH_HMAC_SECRET and refuses a timestamp outside its tolerance,
so a captured request cannot be replayed later. ``X-TrialWatch-Delivery`` and ``Idempotency-Key`` carry the
delivery's Message-ID, the same on every attempt: the receiver's de-duplication key.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-TrialWatch-Timestamp"
SIGNATURE_HEADER = "X-TrialWatch-Signature"
DELIVERY_HEADER = "X-TrialWatch-Delivery"
IDEMPOTENCY_HEADER = "Idempotency-Key"  # the same value: the header receivers' frameworks look for


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(secret: bytes, timestamp: int, body: bytes, delivery_id: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        DELIVERY_HEADER: delivery_id,
        IDEMPOTENCY_HEADER: delivery_id,
    }


def valid(secret: bytes, timestamp: int, body: bytes, presented: str, *, now: int, tolerance: int = 300) -> bool:
    fresh = abs(now - timestamp) <= tolerance
    return fresh and hmac.compare_digest(presented, signature(secret, timestamp, body))
