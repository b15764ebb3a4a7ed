"""ingest's Prometheus metrics (issue #4 item 5), in the service's own registry, served on ``/metrics``.

Records are counted once their batch is committed (a batch that fails to commit accepted nothing):
received = accepted + rejected, by channel (mllp, http, kafka) and format (hl7v2, fhir, records);
duplicates are accepted records seen before. The latency histogram times a batch from its arrival to
its commit. Consumer lag of the Kafka inputs is sampled per assigned partition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import IllegalStateError
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.ingest.batch import Accepted, Outcome

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LAG_INTERVAL = 5.0
POSITION_TIMEOUT = 1.0


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("channel", "format")
        self.received = Counter(
            "trialwatch_ingest_records_received", "Source records received", labels, registry=registry
        )
        self.accepted = Counter(
            "trialwatch_ingest_records_accepted", "Source records accepted", labels, registry=registry
        )
        self.duplicates = Counter(
            "trialwatch_ingest_records_duplicate",
            "Accepted records already accepted before (acknowledged, not published again)",
            labels,
            registry=registry,
        )
        self.rejected = Counter(
            "trialwatch_ingest_records_rejected", "Source records rejected (quarantined)", labels, registry=registry
        )
        self.latency = Histogram(
            "trialwatch_ingest_batch_seconds",
            "From a batch's arrival to its commit",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "trialwatch_ingest_consumer_lag",
            "Records on a Kafka input partition not yet consumed by ingest",
            ("topic", "partition"),
            registry=registry,
        )
        self.mllp_connections = Gauge("trialwatch_ingest_mllp_connections", "Open MLLP connections", registry=registry)

    def batch_committed(self, channel: str, fmt: str, outcomes: Sequence[Outcome], seconds: float) -> None:
        accepted = [outcome for outcome in outcomes if isinstance(outcome, Accepted)]
        duplicates = sum(1 for outcome in accepted if outcome.duplicate)
        self.received.labels(channel, fmt).inc(len(outcomes))
        self.accepted.labels(channel, fmt).inc(len(accepted))
        self.duplicates.labels(channel, fmt).inc(duplicates)
        self.rejected.labels(channel, fmt).inc(len(outcomes) - len(accepted))
        self.latency.labels(channel, fmt).observe(seconds)


class LagProbe:
    """Samples ``high watermark - position`` of every partition assigned to the given consumers."""

    def __init__(self, consumers: Callable[[], Iterable[AIOKafkaConsumer]], gauge: Gauge) -> None:
        self._consumers = consumers
        self._gauge = gauge
        self._stopped = asyncio.Event()

    async def sample(self) -> None:
        self._gauge.clear()
        for consumer in self._consumers():
            for partition in consumer.assignment():
                lag = await _lag(consumer, partition)
                if lag is not None:
                    self._gauge.labels(partition.topic, str(partition.partition)).set(lag)

    async def run(self) -> None:
        while not self._stopped.is_set():
            await self.sample()
            try:
                await asyncio.wait_for(self._stopped.wait(), timeout=LAG_INTERVAL)
            except TimeoutError:
                continue

    def stop(self) -> None:
        self._stopped.set()


async def _lag(consumer: AIOKafkaConsumer, partition: Any) -> int | None:
    """None while the partition has not been fetched yet, or is being revoked (nothing to report)."""
    try:
        highwater = consumer.highwater(partition)
        if highwater is None:
            return None
        position = await asyncio.wait_for(consumer.position(partition), timeout=POSITION_TIMEOUT)
    except (IllegalStateError, TimeoutError):
        return None
    lag: int = max(0, highwater - position)
    return lag
