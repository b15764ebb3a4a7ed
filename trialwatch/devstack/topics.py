"""The single table of TrialWatch's Kafka topics (created explicitly; auto-creation is off).

Names come from ``shared.messaging.topics``; this table adds partition counts for provisioning.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.messaging.topics import ALERTS, DEAD_LETTER, EVENTS, IN_FHIR, IN_HL7, IN_RECORDS, SIGNALS


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int = 1
    configs: dict[str, str] = field(default_factory=dict)
    purpose: str = ""


DLQ = DEAD_LETTER

TOPICS: list[TopicSpec] = [
    TopicSpec(IN_HL7, 6, purpose="raw HL7 v2 messages (MLLP/HTTP ingest)"),
    TopicSpec(IN_FHIR, 6, purpose="raw FHIR resources"),
    TopicSpec(IN_RECORDS, 6, purpose="raw NDJSON records (INTERFACES §1.3)"),
    TopicSpec(EVENTS, 6, purpose="canonical events, one message per source record, keyed by study"),
    TopicSpec(SIGNALS, 3, purpose="safety signals, keyed by study"),
    TopicSpec(ALERTS, 3, purpose="alerts for the notifier"),
    TopicSpec(DLQ, 1, purpose="dead letters from every consumer"),
]

TOPIC_NAMES: list[str] = [spec.name for spec in TOPICS]
