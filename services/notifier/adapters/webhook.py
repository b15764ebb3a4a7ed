"""Webhooks: the message's JSON POSTed, signed with HMAC-SHA256 over timestamp and body.

2xx is delivered; 408, 425, 429, 5xx and a connection that could not be opened are transient; any other
answer is permanent. The in-doubt marker is committed before the request: once the connection is open,
a failure without an answer (timeout, connection reset) leaves the delivery in doubt, and it is not sent
again. ``X-TrialWatch-Delivery`` and ``Idempotency-Key`` carry the Message-ID, the same for every attempt,
so a receiver can also de-duplicate on its side.
"""

from __future__ import annotations

import time

import httpx
import orjson

from services.notifier.adapters.channels import (
    InDoubtDeliveryError,
    PermanentDeliveryError,
    PointOfNoReturn,
    TransientDeliveryError,
)
from services.notifier.adapters.tables import Delivery
from services.notifier.domain.webhook_signature import signed_headers

RETRYABLE = frozenset({408, 425, 429})
PHASES_AFTER_THE_MARKER = 3  # httpx's timeout bounds each of connect, write and read
# Raised before a byte of the request was written: safe to retry.
NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class WebhookSender:
    def __init__(self, secret: bytes, timeout: float) -> None:
        self._secret = secret
        self._timeout = timeout
        # No keep-alive: a pooled connection the receiver closed meanwhile would fail after the point of no
        # return and leave a delivery in doubt that was never sent; a fresh connection fails before it.
        limits = httpx.Limits(max_keepalive_connections=0)
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False, limits=limits)

    @property
    def longest_wait_after_the_point_of_no_return(self) -> float:
        return self._timeout * PHASES_AFTER_THE_MARKER

    def body(self, delivery: Delivery) -> bytes:
        return orjson.dumps(delivery.message["body"] | {"message_id": delivery.message_id})

    async def send(self, delivery: Delivery, point_of_no_return: PointOfNoReturn) -> str:
        """Returns the receiver's status line (2xx)."""
        body = self.body(delivery)
        headers = signed_headers(self._secret, int(time.time()), body, delivery.message_id)
        await point_of_no_return()
        try:
            response = await self._client.post(delivery.recipient, content=body, headers=headers)
        except NOTHING_SENT as error:
            raise TransientDeliveryError(f"webhook {type(error).__name__}: {error}") from error
        except httpx.HTTPError as error:
            raise InDoubtDeliveryError(f"webhook {type(error).__name__} after the request: {error}") from error
        if response.is_success:
            return f"{response.status_code} {response.reason_phrase}"
        detail = f"webhook answered {response.status_code}: {response.text[:200]}"
        if response.status_code in RETRYABLE or response.status_code >= 500:
            raise TransientDeliveryError(detail)
        raise PermanentDeliveryError(detail)

    async def rest(self) -> None:
        """The HTTP client keeps its own pool (and closes idle connections itself)."""

    async def close(self) -> None:
        await self._client.aclose()
