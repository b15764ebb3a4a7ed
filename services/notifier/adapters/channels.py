"""How a channel reports the outcome of one attempt: delivered (returns the receiver's reply), or one of
three errors, and where its point of no return is.

A channel awaits ``point_of_no_return()`` as late as it can while nothing the receiver could accept has
been sent yet: SMTP just before DATA (a server accepts a message only at the final dot), a webhook just
before the request. If the marker cannot be committed the call raises and the channel sends nothing more.
After it, a failure without a definite answer from the receiver is ``InDoubtDeliveryError``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from services.notifier.adapters.tables import Delivery

PointOfNoReturn = Callable[[], Awaitable[None]]


class TransientDeliveryError(Exception):
    """Not delivered, worth retrying later: the server is down, busy, or said 4xx."""


class PermanentDeliveryError(Exception):
    """Not delivered, and no retry will help: the server refused for good (5xx, 4xx webhook answer)."""


class InDoubtDeliveryError(Exception):
    """Past the point of no return without the receiver's answer: it may have arrived; never sent again."""


class Sender(Protocol):
    @property
    def longest_wait_after_the_point_of_no_return(self) -> float:
        """Seconds: the delivery's lease must outlast it, or its in-doubt row could be settled too early."""
        ...

    async def send(self, delivery: Delivery, point_of_no_return: PointOfNoReturn) -> str: ...

    async def rest(self) -> None:
        """Called when the sender found nothing to send: a channel may close connections it kept."""
        ...
