"""The per-record part of every event envelope (shared.events.envelope.Event)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.ingest.domain.keys import NAMESPACE_SHA1, uuid5_text


class RecordContext:
    """Envelope values shared by the events of one source record version.

    `recorded_at` is the ingestion time the record carries (RECEIVEDDTC, MSH-7, meta.lastUpdated) or the
    caller's fallback; when both are absent each event uses its own event time (SAFETY_RULES §5, replay).
    """

    __slots__ = ("_id_prefix", "dedup_key", "recorded_at", "study_id", "subject_id")

    def __init__(self, study_id: str, subject_id: str | None, dedup_key: str, recorded_at: datetime | None) -> None:
        self.study_id = study_id
        self.subject_id = subject_id
        self.dedup_key = dedup_key
        self.recorded_at = recorded_at
        self._id_prefix = dedup_key + "\x1f"

    def envelope(self, kind: str, source: str, ordinal: int, occurred_at: datetime) -> dict[str, Any]:
        """Envelope fields of the `ordinal`-th event of this record, evidence key `source`.

        event_id = `shared.events.deterministic_id(dedup_key, source, str(ordinal))` (see `keys`). The keys
        come in the models' field order (`Event`), and each family adds its own after them in its order,
        so that an event built without validation serialises exactly like a validated one.
        """
        digest = NAMESPACE_SHA1.copy()
        digest.update(f"{self._id_prefix}{source}\x1f{ordinal}".encode())
        return {
            "event_id": uuid5_text(digest.hexdigest()),
            "kind": kind,
            "schema_version": 1,
            "study_id": self.study_id,
            "subject_id": self.subject_id,
            "occurred_at": occurred_at,
            "recorded_at": self.recorded_at or occurred_at,
            "source": source,
            "dedup_key": self.dedup_key,
            "correlation_id": self.dedup_key,
            "causation_id": None,
        }
