"""ingest's dead letters: rejected Kafka input on ``trialwatch.dlq.v1``, never with direct identifiers.

A record the parsers rejected goes to the DLT as its redacted copy (what quarantine keeps), with the
reason in ``x-reason`` and its position in ``x-source``; a message that failed for another reason goes
through the shared middleware (``DeadLetters.send``), reduced to a digest of its bytes, because raw
input may name a patient (INTERFACES §1.1: identifiers are never stored, dead letters included).
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import ConsumerRecord

from services.ingest.batch import Refused
from shared.messaging.dead_letter import MAX_REASON_LENGTH, DeadLetters
from shared.messaging.outbox import Delivery, Publish

REJECTED = "RejectedRecord"


def digest(value: bytes | None) -> bytes:
    raw = value or b""
    return orjson.dumps({"unparseable": True, "sha256": hashlib.sha256(raw).hexdigest(), "length": len(raw)})


class IngestDeadLetters(DeadLetters):
    def __init__(self, publish: Publish, consumer_group: str) -> None:
        super().__init__(publish, consumer_group)
        self._send = publish
        self._group = consumer_group

    async def send(self, record: ConsumerRecord[Any, Any], reason: BaseException, attempts: int) -> Delivery:
        """The shared middleware's path (unexpected failures): the value is replaced by its digest."""
        return await super().send(dataclasses.replace(record, value=digest(record.value)), reason, attempts)

    async def rejected(self, record: ConsumerRecord[Any, Any], refused: Refused) -> Delivery:
        """A record of ``record`` that the parsers rejected (the other records of it were stored)."""
        original = {name: value.decode(errors="replace") for name, value in record.headers or ()}
        headers = {
            **original,
            "x-original-topic": record.topic,
            "x-original-partition": str(record.partition),
            "x-original-offset": str(record.offset),
            "x-consumer-group": self._group,
            "x-source": refused.source,
            "x-reason": refused.error[:MAX_REASON_LENGTH],
            "x-exception": REJECTED,
            "x-attempts": "1",
            "x-failed-at": datetime.now(UTC).isoformat(),
        }
        value = refused.raw.encode() if refused.raw is not None else digest(record.value)
        return await self._send(self.topic, record.key or b"", value, headers)
