"""The versioned envelope every TrialWatch event carries.

Envelope fields are flat on each event (not nested) so that a consumer can read `kind` and
`schema_version` without knowing the family. Additive changes keep a family's version; anything else
is a new version with an upcaster in `shared.events.upcasters`.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

#: Namespace for deterministic event and signal ids (uuid5 over the source key).
TRIALWATCH_NAMESPACE = uuid.UUID("6f1c2a8e-3d4b-5e6f-8a9b-0c1d2e3f4a5b")
#: SHA-1 state after the namespace bytes, copied for every id: `uuid.uuid5` builds two UUID objects per id
#: and costs more than hashing the name.
NAMESPACE_SHA1 = hashlib.sha1(TRIALWATCH_NAMESPACE.bytes)
_VARIANT = {digit: "89ab"[int(digit, 16) & 3] for digit in "0123456789abcdef"}
#: Every model of the package builds its validator and serializer on first use, not at import: replay builds
#: events without validating them and never needs one; a service pays once, at its first message.
MODEL_CONFIG = ConfigDict(frozen=True, extra="forbid", defer_build=True)


def uuid5_text(sha1_hex: str) -> str:
    """The RFC 4122 text of a version-5 UUID from the hex SHA-1 of its name, as `uuid.uuid5` gives it."""
    h = sha1_hex
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def deterministic_id(*parts: str) -> str:
    """A stable id from source keys: the same inputs give the same id in replay and live.

    `str(uuid.uuid5(TRIALWATCH_NAMESPACE, "\\x1f".join(parts)))`, computed from a copied SHA-1 state
    (a test pins the equality)."""
    digest = NAMESPACE_SHA1.copy()
    digest.update("\x1f".join(parts).encode())
    return uuid5_text(digest.hexdigest())


class Event(BaseModel):
    """Envelope fields shared by every event family."""

    model_config = MODEL_CONFIG

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
