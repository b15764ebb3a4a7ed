"""Where a failed message ends up, and the dead-letter record's header contract.

Runs the real middleware on FastStream's in-memory broker with a recording publisher; commits and
redelivery against the real broker are covered by tests/integration/test_smoke_pipeline.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest
from faststream import AckPolicy
from faststream.kafka import KafkaBroker, KafkaMessage, KafkaRouter, TestKafkaBroker
from faststream.kafka.message import KafkaAckableMessage
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError

from shared.messaging.dead_letter import DeadLetterMiddlewareFactory, DeadLetters, PoisonMessageError
from shared.messaging.outbox import Delivery
from shared.messaging.retry import Backoff, RetryPolicy

FAST = RetryPolicy(max_attempts=3, backoff=Backoff(first=0.001, cap=0.002))


class Reading(BaseModel):
    value: int


class RecordingPublish:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, bytes, bytes, dict[str, str]]] = []
        self.fail = fail

    async def __call__(self, topic: str, key: bytes, value: bytes, headers: Mapping[str, str]) -> Delivery:
        if self.fail:
            raise ConnectionError("broker away")
        self.sent.append((topic, key, value, dict(headers)))
        return Delivery(topic, 0, len(self.sent) - 1)


def record_nacks(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Which messages were sought back (nack) instead of acknowledged."""
    nacked: list[object] = []
    original = KafkaAckableMessage.nack

    async def spy(self: KafkaAckableMessage) -> None:
        body = self.body
        nacked.append(json.loads(body)["value"] if body.startswith(b"{") else body)
        await original(self)

    monkeypatch.setattr(KafkaAckableMessage, "nack", spy)
    return nacked


def broker_with(handler_errors: list[Exception], publish: RecordingPublish) -> tuple[KafkaBroker, list[int]]:
    """A subscriber that raises ``handler_errors`` in turn, then succeeds; returns the call log."""
    calls: list[int] = []
    middleware = DeadLetterMiddlewareFactory(DeadLetters(publish, "test-group"), FAST)
    router = KafkaRouter(middlewares=[middleware])

    @router.subscriber("in", group_id="test-group", ack_policy=AckPolicy.MANUAL)
    async def handle(reading: Reading, msg: KafkaMessage) -> None:
        calls.append(reading.value)
        if handler_errors:
            raise handler_errors.pop(0)
        await msg.ack()

    broker = KafkaBroker(ack_policy=AckPolicy.MANUAL)
    broker.include_router(router)
    return broker, calls


async def test_unparseable_input_goes_to_the_dead_letter_topic_at_once_with_its_origin() -> None:
    publish = RecordingPublish()
    broker, calls = broker_with([], publish)
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(b"{not json", "in", key=b"STUDY-1", headers={"trace": "t-1"})
    assert calls == []
    [(topic, key, value, headers)] = publish.sent
    assert (topic, key, value) == ("trialwatch.dlq.v1", b"STUDY-1", b"{not json")
    assert headers["x-original-topic"] == "in"
    assert {"x-original-partition", "x-original-offset", "x-failed-at"} <= set(headers)
    assert headers["x-consumer-group"] == "test-group"
    assert headers["x-attempts"] == "1"
    assert headers["x-exception"] == "ValidationError"
    assert headers["trace"] == "t-1"


async def test_a_handler_that_declares_poison_is_not_retried() -> None:
    publish = RecordingPublish()
    broker, calls = broker_with([PoisonMessageError("study not configured")], publish)
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish({"value": 1}, "in")
    assert calls == [1]
    assert publish.sent[0][3]["x-reason"] == "PoisonMessageError: study not configured"


async def test_a_failing_handler_is_retried_a_bounded_number_of_times_then_dead_lettered() -> None:
    publish = RecordingPublish()
    broker, calls = broker_with([RuntimeError("bug")] * 10, publish)
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish({"value": 7}, "in")
    assert calls == [7] * FAST.max_attempts
    assert publish.sent[0][3]["x-attempts"] == str(FAST.max_attempts)
    assert publish.sent[0][3]["x-reason"] == "RuntimeError: bug"


async def test_a_transient_failure_is_retried_and_then_processed_without_a_dead_letter() -> None:
    publish = RecordingPublish()
    broker, calls = broker_with([RuntimeError("flaky"), RuntimeError("flaky")], publish)
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish({"value": 3}, "in")
    assert calls == [3, 3, 3]
    assert publish.sent == []


@pytest.mark.parametrize("error", [OperationalError("SELECT 1", {}, ConnectionError("db down")), OSError("reset")])
async def test_an_infrastructure_outage_is_sought_back_for_redelivery_never_dead_lettered(
    error: Exception, monkeypatch: pytest.MonkeyPatch
) -> None:
    nacked = record_nacks(monkeypatch)
    publish = RecordingPublish()
    broker, calls = broker_with([error] * 10, publish)
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish({"value": 5}, "in")
    assert calls == [5] * FAST.max_attempts
    assert publish.sent == []
    assert nacked == [5]


async def test_a_dead_letter_that_cannot_be_published_keeps_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    nacked = record_nacks(monkeypatch)
    publish = RecordingPublish(fail=True)
    broker, calls = broker_with([], publish)
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(b"garbage", "in")
    assert calls == []
    assert publish.sent == []
    assert nacked == [b"garbage"]


def test_backoff_grows_and_is_capped() -> None:
    backoff = Backoff(first=0.2, cap=1.0)
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
