"""safety_rules' Prometheus metrics: records in, signals out, latency, consumer lag per partition.

Everything is observed after the database commit, so a counted signal is a persisted one.
"""

from __future__ import annotations

from collections import Counter as CountOf
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.safety_rules.handlers import Evaluated
from shared.events import RecordIngested, Signal

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class RulesPrometheus:
    """The `RulesMetrics` of the handlers, on the service's registry."""

    def __init__(self, registry: CollectorRegistry, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock
        self.records = Counter(
            "safety_rules_records",
            "Ingested records consumed from trialwatch.events.v1, by outcome (processed or duplicate)",
            ["outcome"],
            registry=registry,
        )
        self.events = Counter(
            "safety_rules_events", "Canonical events in processed records, by kind", ["kind"], registry=registry
        )
        self.signals = Counter(
            "safety_rules_signals",
            "Signals persisted and enqueued for trialwatch.signals.v1",
            ["rule_id", "severity"],
            registry=registry,
        )
        self.latency = Histogram(
            "safety_rules_processing_latency_seconds",
            "From the record's ingest received_at to the commit that persisted its signals",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

        # The labelled children once: ``labels()`` takes a lock and builds a key each time (per record).
        self._outcomes = {True: self.records.labels("duplicate"), False: self.records.labels("processed")}
        self._kinds: dict[str, Counter] = {}

    def records_evaluated(self, records: Sequence[RecordIngested], outcomes: Sequence[Evaluated]) -> None:
        """One batch, committed now: each counter once per label (a counter's ``inc`` takes a lock; per
        event it was a few percent of the service's CPU), a latency per record from one clock reading."""
        now, kinds, duplicates = self._clock(), CountOf[str](), 0
        for record, outcome in zip(records, outcomes, strict=True):
            if outcome.duplicate:
                duplicates += 1
                continue
            kinds.update(event.kind for event in record.events)
            self._count(outcome.signals)
            self.latency.observe(max(0.0, (now - record.received_at).total_seconds()))
        for processed, count in ((True, duplicates), (False, len(records) - duplicates)):
            if count:
                self._outcomes[processed].inc(count)
        for kind, count in kinds.items():
            counter = self._kinds.get(kind)
            if counter is None:
                counter = self._kinds[kind] = self.events.labels(kind)
            counter.inc(count)

    def clock_signals(self, signals: Sequence[Signal]) -> None:
        self._count(signals)

    def _count(self, signals: Sequence[Signal]) -> None:
        for signal in signals:
            self.signals.labels(signal.rule_id, signal.severity).inc()


class OffsetSource(Protocol):
    """What lag needs of a Kafka consumer (aiokafka's `AIOKafkaConsumer` has it)."""

    def assignment(self) -> set[TopicPartition]: ...

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...

    async def committed(self, partition: TopicPartition) -> int | None: ...

    async def beginning_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...


class ConsumerLag:
    """``safety_rules_consumer_lag{topic,partition}`` = end offset − committed offset, for this
    instance's assigned partitions (a partition revoked in a rebalance loses its series)."""

    def __init__(self, registry: CollectorRegistry, consumer: Callable[[], OffsetSource | None]) -> None:
        self._consumer = consumer
        self._shown: set[TopicPartition] = set()
        self.gauge = Gauge(
            "safety_rules_consumer_lag",
            "Records not yet committed by the consumer group, per assigned partition",
            ["topic", "partition"],
            registry=registry,
        )

    async def refresh(self) -> None:
        consumer = self._consumer()
        assigned = set(consumer.assignment()) if consumer is not None else set()
        for gone in self._shown - assigned:
            self.gauge.remove(gone.topic, str(gone.partition))
            self._shown.discard(gone)
        if consumer is None or not assigned:
            return
        partitions = sorted(assigned)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        for partition in partitions:
            committed = await consumer.committed(partition)
            position = starts[partition] if committed is None else committed
            self.gauge.labels(partition.topic, str(partition.partition)).set(max(0, ends[partition] - position))
            self._shown.add(partition)
