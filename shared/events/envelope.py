"""The versioned envelope every TrialWatch event carries.

Envelope fields are flat on each event (not nested) so that a consumer can read `kind` and
`schema_version` without knowing the family. Additive changes keep a family's version; anything else
is a new version with an upcaster in `shared.events.upcasters`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

#: Namespace for deterministic event and signal ids (uuid5 over the source key).
TRIALWATCH_NAMESPACE = uuid.UUID("6f1c2a8e-3d4b-5e6f-8a9b-0c1d2e3f4a5b")


def deterministic_id(*parts: str) -> str:
    """A stable id from source keys: the same inputs give the same id in replay and live."""
    return str(uuid.uuid5(TRIALWATCH_NAMESPACE, "\x1f".join(parts)))


class Event(BaseModel):
    """Envelope fields shared by every event family."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(description="Deterministic id (uuid5) derived from the source key")
    kind: str = Field(description="Event family, e.g. 'lab.result'")
    schema_version: int = Field(description="Version of this family's schema")
    study_id: str = Field(description="Study identifier (STUDYID)")
    subject_id: str | None = Field(description="Study subject id (USUBJID); null for study-level events")
    occurred_at: AwareDatetime = Field(description="When the fact happened (collection, onset, dose time)")
    recorded_at: AwareDatetime = Field(
        description="When TrialWatch first ingested it (RECEIVEDDTC, MSH-7, meta.lastUpdated, else wall clock)"
    )
    source: str = Field(
        description="Evidence key of the source record: HL7:<MSH-4>:<MSH-10>:<OBX-1>, "
        "FHIR:<type>/<id>/_history/<version>, REC:<STUDYID>:<DOMAIN>:<RECID>"
    )
    dedup_key: str = Field(description="Identity of the source record version; a re-sent duplicate has the same key")
    correlation_id: str | None = Field(default=None, description="Id shared by events of one request/message")
    causation_id: str | None = Field(default=None, description="Event id that caused this event")


def utc_iso(value: datetime) -> str:
    """ISO 8601 UTC with a trailing Z, as every external edge prints times."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
