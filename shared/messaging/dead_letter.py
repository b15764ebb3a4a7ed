"""Dead-letter handling for manual-ack Kafka subscribers: bounded retries, then the DLT, never a hot loop.

Every delivery ends in exactly one of three ways, so a failed message is never committed past silently
(the FastStream MANUAL trap, TECH_NOTES §2.2):
- the handler succeeded and acknowledged it after its database commit;
- it is poison (cannot parse, or the handler said so), or it kept failing for ``max_attempts`` with a
  non-infrastructure error: it is published to the dead-letter topic with the reason, then acknowledged;
- the infrastructure (database, broker) kept failing: it is sought back (nack) after a pause and
  redelivered; an outage delays the partition, it never empties it into the DLT.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRecord
from aiokafka.errors import KafkaError
from faststream import BaseMiddleware, ContextRepo, StreamMessage
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from shared.logs import get_logger
from shared.messaging.outbox import Delivery, Publish
from shared.messaging.retry import RetryPolicy
from shared.messaging.topics import DEAD_LETTER

INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    OperationalError,
    InterfaceError,
    KafkaError,
)
MAX_REASON_LENGTH = 1000

log = get_logger(__name__)


class PoisonMessageError(Exception):
    """Raised by a handler for input that no retry can ever process (the reason goes to the DLT)."""


def is_poison(exc: BaseException) -> bool:
    return isinstance(exc, ValidationError | PoisonMessageError)


def is_infrastructure(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, INFRASTRUCTURE_ERRORS)


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:MAX_REASON_LENGTH]


class DeadLetters:
    """Publishes a failed record, unchanged, to the DLT with where it came from and why it failed."""

    def __init__(self, publish: Publish, consumer_group: str, topic: str = DEAD_LETTER) -> None:
        self._publish = publish
        self._consumer_group = consumer_group
        self.topic = topic

    async def send(self, record: ConsumerRecord[Any, Any], reason: BaseException, attempts: int) -> Delivery:
        original = {name: value.decode(errors="replace") for name, value in record.headers or ()}
        headers = {
            **original,
            "x-original-topic": record.topic,
            "x-original-partition": str(record.partition),
            "x-original-offset": str(record.offset),
            "x-consumer-group": self._consumer_group,
            "x-reason": describe(reason),
            "x-exception": type(reason).__name__,
            "x-attempts": str(attempts),
            "x-failed-at": datetime.now(UTC).isoformat(),
        }
        return await self._publish(self.topic, record.key or b"", record.value or b"", headers)


class DeadLetterMiddleware(BaseMiddleware):
    def __init__(self, msg: Any, /, *, context: ContextRepo, dead_letters: DeadLetters, policy: RetryPolicy) -> None:
        super().__init__(msg, context=context)
        self._dead_letters = dead_letters
        self._policy = policy

    async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await call_next(msg)
            except Exception as exc:
                if is_poison(exc) or attempt >= self._policy.max_attempts:
                    return await self._give_up(msg, exc, attempt)
                log.warning("consume.retrying", attempt=attempt, error=describe(exc), **_where(msg))
                await asyncio.sleep(self._policy.backoff.delay(attempt))

    async def _give_up(self, msg: StreamMessage[Any], exc: Exception, attempts: int) -> None:
        if not is_poison(exc) and is_infrastructure(exc):
            await self._redeliver_later(msg, exc)
            return
        try:
            delivery = await self._dead_letters.send(_record(msg), exc, attempts)
        except Exception as publish_error:  # the broker itself is away: keep the message
            await self._redeliver_later(msg, publish_error)
            return
        log.error(
            "consume.dead_lettered",
            reason=describe(exc),
            attempts=attempts,
            dead_letter_offset=delivery.offset,
            **_where(msg),
        )
        await msg.ack()

    async def _redeliver_later(self, msg: StreamMessage[Any], exc: BaseException) -> None:
        log.warning("consume.redeliver_later", error=describe(exc), **_where(msg))
        await asyncio.sleep(self._policy.backoff.cap)
        await msg.nack()


class DeadLetterMiddlewareFactory:
    """What FastStream calls per message to build the middleware (its ``BrokerMiddleware`` protocol)."""

    def __init__(self, dead_letters: DeadLetters, policy: RetryPolicy) -> None:
        self._dead_letters = dead_letters
        self._policy = policy

    def __call__(self, msg: Any, /, *, context: ContextRepo) -> DeadLetterMiddleware:
        return DeadLetterMiddleware(msg, context=context, dead_letters=self._dead_letters, policy=self._policy)


def _record(msg: StreamMessage[Any]) -> ConsumerRecord[Any, Any]:
    record = msg.raw_message
    if not isinstance(record, ConsumerRecord):
        raise TypeError("dead-lettering supports single-record subscribers only")
    return record


def _where(msg: StreamMessage[Any]) -> dict[str, Any]:
    record = msg.raw_message
    if isinstance(record, ConsumerRecord):
        return {"topic": record.topic, "partition": record.partition, "offset": record.offset}
    return {}
