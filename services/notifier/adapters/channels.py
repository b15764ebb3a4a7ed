"""How a channel reports the outcome of one attempt: delivered (returns), or one of two errors."""

from __future__ import annotations

from typing import Protocol

from services.notifier.adapters.tables import Delivery


class TransientDeliveryError(Exception):
    """Worth retrying later: the server is down, busy, or said 4xx."""


class PermanentDeliveryError(Exception):
    """No retry will help: the server refused for good (5xx, 4xx webhook answer)."""


class Sender(Protocol):
    async def send(self, delivery: Delivery) -> None: ...
