"""The single table of TrialWatch's Kafka topics (created explicitly; auto-creation is off).

Import ``TOPICS`` (or the name constants) instead of spelling topic names elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    replication: int = 1
    configs: dict[str, str] = field(default_factory=dict)
    purpose: str = ""


IN_HL7 = "trialwatch.in.hl7"
IN_FHIR = "trialwatch.in.fhir"
IN_RECORDS = "trialwatch.in.records"
EVENTS = "trialwatch.events.v1"
SIGNALS = "trialwatch.signals.v1"
ALERTS = "trialwatch.alerts.v1"
DLQ = "trialwatch.dlq.v1"

TOPICS: list[TopicSpec] = [
    TopicSpec(IN_HL7, 6, purpose="raw HL7 v2 messages (MLLP/HTTP ingest)"),
    TopicSpec(IN_FHIR, 6, purpose="raw FHIR resources"),
    TopicSpec(IN_RECORDS, 6, purpose="raw CSV/JSON records"),
    TopicSpec(EVENTS, 6, purpose="canonical events"),
    TopicSpec(SIGNALS, 3, purpose="safety signals, keyed by study"),
    TopicSpec(ALERTS, 3, purpose="alerts for the notifier"),
    TopicSpec(DLQ, 1, purpose="dead letters from every consumer"),
]

TOPIC_NAMES: list[str] = [spec.name for spec in TOPICS]
