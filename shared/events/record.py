"""One accepted source record and its canonical events: the unit on `trialwatch.events.v1`.

The rules engine evaluates a source record as a whole (an HL7 message's results together, SAFETY_RULES §2
ANC derivation and §6 duplicates), so ingest publishes one message per record, keyed by study id: a single
partition per study gives the rules one writer and the ingestion order (INTERFACES §5, issue #4).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from shared.events.clinical import ClinicalEvent
from shared.events.envelope import MODEL_CONFIG


class RecordIngested(BaseModel):
    """An accepted source record (HL7 message, FHIR resource, NDJSON line) with the events it yields."""

    model_config = MODEL_CONFIG

    kind: Literal["record.ingested"] = "record.ingested"
    schema_version: Literal[1] = 1
    record_id: str = Field(description="Deterministic id of the record (from its dedup key)")
    dedup_key: str = Field(description="Identity of the source record version (SAFETY_RULES §6 Duplicates)")
    study_id: str = Field(description="Study the record belongs to; the Kafka key")
    received_at: AwareDatetime = Field(description="When ingest accepted it (wall clock)")
    channel: Literal["mllp", "http", "kafka", "file"] = Field(description="How the record arrived")
    events: list[ClinicalEvent] = Field(description="Canonical events of the record, in source order")
