"""Records in, signals out, latency and consumer lag on the service's Prometheus registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from services.safety_rules.handlers import Evaluated
from services.safety_rules.metrics import ConsumerLag, RulesPrometheus
from shared.events import DoseRecorded, RecordIngested, Signal

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def signal(rule_id: str, severity: str = "URGENT") -> Signal:
    return Signal.model_validate(
        {
            "signal_id": f"id-{rule_id}",
            "study_id": "ANAKINRA-AD",
            "subject_id": "AD-1",
            "rule_id": rule_id,
            "severity": severity,
            "action": "NONE",
            "status": "RAISED",
            "observed_at": NOW,
            "evidence": ["REC:ANAKINRA-AD:LB:1"],
        }
    )


def record(received_seconds_ago: float, *kinds: str) -> RecordIngested:
    """A record received that long before NOW, with events of ``kinds`` (built unvalidated: only the kind
    counts here)."""
    events = [DoseRecorded.model_construct(kind=kind) for kind in kinds]
    return RecordIngested.model_construct(
        record_id="r-1",
        dedup_key="REC:ANAKINRA-AD:LB:1",
        study_id="ANAKINRA-AD",
        received_at=NOW - timedelta(seconds=received_seconds_ago),
        channel="kafka",
        events=events,
    )


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_processed_records_count_signals_by_rule_and_severity_and_their_latency() -> None:
    registry = CollectorRegistry()
    metrics = RulesPrometheus(registry, clock=lambda: NOW)
    records = [record(1.5, "lab.result", "lab.result", "dose"), record(9.0, "lab.result"), record(0.5, "dose")]
    outcomes = [
        Evaluated([signal("LAB-ANC-3"), signal("H-NEUT", "HALT")], duplicate=False),
        Evaluated([], duplicate=True),
        Evaluated([signal("LAB-ANC-3")], duplicate=False),
    ]
    metrics.records_evaluated(records, outcomes)
    metrics.clock_signals([signal("CLOCK-BREACH")])
    assert value(registry, "safety_rules_records_total", outcome="processed") == 2
    assert value(registry, "safety_rules_records_total", outcome="duplicate") == 1
    assert value(registry, "safety_rules_events_total", kind="lab.result") == 2, "the duplicate's events aside"
    assert value(registry, "safety_rules_events_total", kind="dose") == 2
    assert value(registry, "safety_rules_signals_total", rule_id="LAB-ANC-3", severity="URGENT") == 2
    assert value(registry, "safety_rules_signals_total", rule_id="H-NEUT", severity="HALT") == 1
    assert value(registry, "safety_rules_signals_total", rule_id="CLOCK-BREACH", severity="URGENT") == 1
    assert value(registry, "safety_rules_processing_latency_seconds_count") == 2
    assert value(registry, "safety_rules_processing_latency_seconds_sum") == 2.0
    assert value(registry, "safety_rules_processing_latency_seconds_bucket", le="0.5") == 1
    assert value(registry, "safety_rules_processing_latency_seconds_bucket", le="1.0") == 1
    assert value(registry, "safety_rules_processing_latency_seconds_bucket", le="2.5") == 2


class FakeConsumer:
    def __init__(self, assigned: set[TopicPartition], ends: dict[TopicPartition, int]) -> None:
        self.assigned = assigned
        self.ends = ends
        self.commits: dict[TopicPartition, int] = {}

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends[tp] for tp in partitions}

    async def beginning_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: 2 for tp in partitions}

    async def committed(self, partition: TopicPartition) -> int | None:
        return self.commits.get(partition)


async def test_lag_is_end_minus_committed_per_assigned_partition_and_revoked_ones_disappear() -> None:
    registry = CollectorRegistry()
    p0, p1 = TopicPartition("events", 0), TopicPartition("events", 1)
    consumer = FakeConsumer({p0, p1}, {p0: 10, p1: 7})
    consumer.commits[p0] = 4
    lag = ConsumerLag(registry, lambda: consumer)
    await lag.refresh()
    assert value(registry, "safety_rules_consumer_lag", topic="events", partition="0") == 6
    assert value(registry, "safety_rules_consumer_lag", topic="events", partition="1") == 5  # nothing committed
    consumer.assigned = {p1}
    consumer.commits[p1] = 7
    await lag.refresh()
    assert value(registry, "safety_rules_consumer_lag", topic="events", partition="0") is None
    assert value(registry, "safety_rules_consumer_lag", topic="events", partition="1") == 0


async def test_no_consumer_yet_means_no_lag_series() -> None:
    registry = CollectorRegistry()
    await ConsumerLag(registry, lambda: None).refresh()
    assert value(registry, "safety_rules_consumer_lag", topic="events", partition="0") is None
