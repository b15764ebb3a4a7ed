"""notifier entrypoint: consume signals, open one alert per signal, acknowledge after the commit.

Routing, grouping and delivery (SMTP) come later; for now a signal is recorded, audited and logged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from faststream import AckPolicy
from faststream.kafka import KafkaMessage, KafkaRouter
from faststream.types import BrokerMiddleware

from shared.events import Signal
from shared.logs import get_logger
from shared.messaging.topics import DEAD_LETTER, SIGNALS

CONSUMER_GROUP = "notifier"

log = get_logger(__name__)


class SignalRecorder(Protocol):
    async def record(self, signal: Signal) -> str | None: ...


def create_router(recorder: SignalRecorder, middlewares: Sequence[BrokerMiddleware[Any, Any]] = ()) -> KafkaRouter:
    router = KafkaRouter(middlewares=middlewares)
    router.publisher(
        DEAD_LETTER,
        title=f"{DEAD_LETTER}:NotifierDeadLetter",
        schema=bytes,
        description="Signals notifier could not process: the original bytes, with x-original-topic, "
        "x-original-partition, x-original-offset, x-reason and x-attempts headers.",
    )

    @router.subscriber(
        SIGNALS,
        group_id=CONSUMER_GROUP,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        title=f"{SIGNALS}:ReceiveSignal",
        description="Signals from safety_rules; one alert per signal id, acknowledged after commit.",
    )
    async def receive_signal(signal: Signal, msg: KafkaMessage) -> None:
        alert_id = await recorder.record(signal)
        log.info(
            "signal.received",
            signal_id=signal.signal_id,
            rule_id=signal.rule_id,
            severity=signal.severity,
            study_id=signal.study_id,
            subject_id=signal.subject_id,
            alert_id=alert_id,
            duplicate=alert_id is None,
        )
        await msg.ack()

    return router


class NotWired:
    """Stands in for the store when the router is built only to document it (AsyncAPI)."""

    async def record(self, signal: Signal) -> str | None:
        raise RuntimeError("documentation router: not wired to a database")


def documentation_router() -> KafkaRouter:
    return create_router(NotWired())
