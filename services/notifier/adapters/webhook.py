"""Webhooks: the message's JSON POSTed, signed with HMAC-SHA256 over timestamp and body.

2xx is delivered; 408, 425, 429, 5xx and connection problems are transient; any other answer is permanent.
``X-TrialWatch-Delivery`` carries the Message-ID, the receiver's idempotency key.
"""

from __future__ import annotations

import time

import httpx
import orjson

from services.notifier.adapters.channels import PermanentDeliveryError, TransientDeliveryError
from services.notifier.adapters.tables import Delivery
from services.notifier.domain.webhook_signature import signed_headers

RETRYABLE = frozenset({408, 425, 429})


class WebhookSender:
    def __init__(self, secret: bytes, timeout: float) -> None:
        self._secret = secret
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=False)

    def body(self, delivery: Delivery) -> bytes:
        return orjson.dumps(delivery.message["body"] | {"message_id": delivery.message_id})

    async def send(self, delivery: Delivery) -> None:
        body = self.body(delivery)
        headers = signed_headers(self._secret, int(time.time()), body, delivery.message_id)
        try:
            response = await self._client.post(delivery.recipient, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise TransientDeliveryError(f"webhook {type(error).__name__}: {error}") from error
        if response.is_success:
            return
        detail = f"webhook answered {response.status_code}: {response.text[:200]}"
        if response.status_code in RETRYABLE or response.status_code >= 500:
            raise TransientDeliveryError(detail)
        raise PermanentDeliveryError(detail)

    async def close(self) -> None:
        await self._client.aclose()
