"""The per-record part of every event envelope (shared.events.envelope.Event)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from services.ingest.domain.age import AgeUnit, age_at
from shared.events import LabResultRecorded
from shared.events.envelope import NAMESPACE_SHA1, uuid5_text

_LAB_RESULT_FIELDS = tuple(LabResultRecorded.model_fields)


class RecordContext:
    """Envelope values shared by the events of one source record version.

    `recorded_at` is the ingestion time the record carries (RECEIVEDDTC, MSH-7, meta.lastUpdated) or the
    caller's fallback; when both are absent each event uses its own event time (SAFETY_RULES §5, replay).
    `born` (HL7 PID-7) only gives each result its age at collection; it is never on an event.
    """

    __slots__ = (
        "_age",
        "_age_collected_at",
        "_id_prefix",
        "_ids",
        "_lab_template",
        "born",
        "dedup_key",
        "recorded_at",
        "study_id",
        "subject_id",
    )

    def __init__(
        self,
        study_id: str,
        subject_id: str | None,
        dedup_key: str,
        recorded_at: datetime | None,
        born: date | None = None,
        *,
        event_ids: bool = True,
    ) -> None:
        self.study_id = study_id
        self.subject_id = subject_id
        self.dedup_key = dedup_key
        self.recorded_at = recorded_at
        self.born = born
        self._id_prefix = dedup_key + "\x1f"
        self._ids = event_ids
        self._lab_template: dict[str, Any] | None = None
        # The last age worked out: the results of one order share their collection time.
        self._age_collected_at: datetime | None = None
        self._age: tuple[int, AgeUnit] | tuple[None, None] = (None, None)

    def event_id(self, source: str, ordinal: int) -> str:
        """`shared.events.deterministic_id(dedup_key, source, str(ordinal))` (see `keys`); "" when the
        parser was configured without event ids (`ParserConfig.event_ids`)."""
        if not self._ids:
            return ""
        digest = NAMESPACE_SHA1.copy()
        digest.update(f"{self._id_prefix}{source}\x1f{ordinal}".encode())
        return uuid5_text(digest.hexdigest())

    def envelope(self, kind: str, source: str, ordinal: int, occurred_at: datetime) -> dict[str, Any]:
        """Envelope fields of the `ordinal`-th event of this record, evidence key `source`.

        The keys come in the models' field order (`Event`), and each family adds its own after them in its
        order, so that an event built without validation serialises exactly like a validated one.
        """
        return {
            "event_id": self.event_id(source, ordinal),
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

    def lab_result_fields(self, source: str, ordinal: int, occurred_at: datetime) -> dict[str, Any]:
        """Every field of a LabResultRecorded, in field order: the envelope filled in, the family's own
        fields None for the caller to set.

        A copy of a template kept for the record (an HL7 message has many results): cheaper than growing
        the envelope by the family's fields, event after event.
        """
        template = self._lab_template
        if template is None:
            template = self._lab_template = dict.fromkeys(_LAB_RESULT_FIELDS)
            template.update(self.envelope("lab.result", source, ordinal, occurred_at))
            fields = template.copy()
        else:
            fields = template.copy()
            fields["event_id"] = self.event_id(source, ordinal)
            fields["occurred_at"] = occurred_at
            fields["recorded_at"] = self.recorded_at or occurred_at
            fields["source"] = source
        if self.born is not None:
            self.add_age(fields, occurred_at)
        return fields

    def age(self, collected_at: datetime) -> tuple[int, AgeUnit] | None:
        """The subject's age at `collected_at`; None without a birth date."""
        return age_at(self.born, collected_at) if self.born is not None else None

    def add_age(self, fields: dict[str, Any], collected_at: datetime) -> None:
        """`age_at_collection` and `age_unit` of a result collected at `collected_at` (None: no birth date)."""
        if collected_at != self._age_collected_at:
            self._age = self.age(collected_at) or (None, None)
            self._age_collected_at = collected_at
        fields["age_at_collection"], fields["age_unit"] = self._age
