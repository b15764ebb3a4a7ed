"""Parse results -> the rows one ingest transaction writes, and what each record's sender is told.

Pure: no I/O and no clock (``received_at`` is handed in). An accepted record becomes a ledger row with
its redacted copy, its canonical events and one ``RecordIngested`` (the outbox payload, serialised once
here); a rejected one a quarantine row. A record whose content cannot be stored (PostgreSQL refuses NUL
characters in JSON) is rejected with that reason instead of failing the whole batch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, NamedTuple

import orjson
from pydantic_core import to_json

from services.ingest.domain import Parsed, ParseResult, Rejected
from services.ingest.units import Format, Unit
from shared.events import Event, RecordIngested, deterministic_id

Channel = Literal["mllp", "http", "kafka"]


@dataclass(frozen=True, slots=True)
class Accepted:
    """An accepted record; ``duplicate`` when its dedup key was accepted before (acknowledged, not published)."""

    source: str
    key: str
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class Refused:
    """A rejected record: ``error`` names the record, the field and the reason; ``raw`` is what of it may
    be kept (identifiers blanked), if anything."""

    source: str
    error: str
    raw: str | None = None


Outcome = Accepted | Refused


@dataclass(frozen=True, slots=True)
class Arrival:
    """Where and when a batch arrived, and the study that HL7 and FHIR input belong to by default."""

    channel: Channel
    format: Format
    received_at: datetime
    default_study: str


class EventRow(NamedTuple):
    """A ``canonical_event`` row, its fields in the table's COPY order (written as it is, no copy made)."""

    event_id: str
    dedup_key: str
    kind: str
    study_id: str
    subject_id: str | None
    payload: str
    recorded_at: datetime
    ordinal: int  # its place among its record's events: RecordIngested's order, for rebuilding the message


#: ``EventRow(*fields)`` without the Python-level ``__new__`` a NamedTuple gets (a tenth of building the rows).
_new_row = tuple.__new__


@dataclass(frozen=True, slots=True)
class RecordRow:
    """An accepted record. ``message`` (RecordIngested as JSON) is None for MSH-11 T/D messages."""

    key: str
    record_id: str
    study_id: str
    origin: str
    sha256: str
    raw: str
    non_production: bool
    message: str | None
    events: tuple[EventRow, ...]


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    source: str
    error: str
    sha256: str
    raw: str | None


@dataclass
class Batch:
    arrival: Arrival
    records: list[RecordRow] = field(default_factory=list)
    quarantine: list[QuarantineRow] = field(default_factory=list)


def storable_text(raw: str | dict[str, Any] | None) -> str | None:
    """The redacted copy as text; a NUL (which PostgreSQL text cannot hold) becomes U+FFFD."""
    if raw is None:
        return None
    try:
        text = raw if isinstance(raw, str) else orjson.dumps(raw).decode()
    except orjson.JSONEncodeError:  # a lone surrogate: nothing of it can be kept as text
        return None
    return text.replace("\x00", "\ufffd")


def _no_nul(text: str, nul: str = "\x00") -> str:
    """``text``, unless it holds a NUL (``nul``: the character, or its JSON escape): PostgreSQL stores neither."""
    if nul in text:
        raise ValueError("a value holds a NUL character (\\u0000), which cannot be stored")
    return text


class Envelope:
    """RecordIngested's JSON around its three per-record strings and its events, for one arrival.

    Cut once per batch from pydantic's own dump of a record with placeholder strings, so a message is
    exactly ``RecordIngested(...).model_dump_json()`` without building and validating the model per record
    (that and the per-record dump were half of ingest's CPU outside parsing).
    """

    _PLACEHOLDERS = ("\x01", "\x02", "\x03")

    def __init__(self, arrival: Arrival) -> None:
        record_id, dedup_key, study_id = self._PLACEHOLDERS
        template = RecordIngested(
            record_id=record_id,
            dedup_key=dedup_key,
            study_id=study_id,
            received_at=arrival.received_at,
            channel=arrival.channel,
            events=[],
        ).model_dump_json()
        parts: list[str] = []
        for placeholder in self._PLACEHOLDERS:
            head, template = template.split(to_json(placeholder).decode(), 1)
            parts.append(head)
        if not template.endswith("[]}"):  # ``events`` is the model's last field
            raise AssertionError(f"RecordIngested no longer ends with its events: {template!r}")
        self._parts = (*parts, template[:-2])

    def message(self, record_id: str, dedup_key: str, study_id: str, events_json: Sequence[str]) -> str:
        """The RecordIngested of one record, each event's JSON as given (serialised once, also for its row)."""
        first, second, third, events = self._parts
        return "".join(
            (
                first,
                to_json(record_id).decode(),
                second,
                to_json(dedup_key).decode(),
                third,
                to_json(study_id).decode(),
                events,
                ",".join(events_json),
                "]}",
            )
        )


def _decimal_text(value: object) -> str:
    """What pydantic writes for a Decimal (its ``str``); anything else orjson cannot write is refused."""
    if type(value) is Decimal:
        return str(value)
    raise TypeError(type(value).__name__)


def event_json(event: Event) -> str:
    """``event.model_dump_json()``, written by orjson from the event's fields (less than half the time).

    The events hold only what both write alike: str, int, bool, None, dicts of them, Decimal (``str``) and
    UTC datetimes (``Z``; the parsers normalise every time to UTC); both write the fields in the order of
    the instance's ``__dict__``. Anything else goes to pydantic's serializer;
    tests/ingest/test_ingest_event_json.py pins the bytes equal over the replay corpus and the benchmark's stream.
    """
    return _fields_json(event, event.__dict__)


def _fields_json(event: Event, fields: dict[str, Any]) -> str:
    try:
        return orjson.dumps(fields, default=_decimal_text, option=orjson.OPT_UTC_Z).decode()
    except TypeError:  # orjson.JSONEncodeError is one: an int over 64 bits, a lone surrogate, another type
        return event.__pydantic_serializer__.to_json(event).decode()


def _event_rows(events: Sequence[Event], key: str) -> tuple[list[str], tuple[EventRow, ...]]:
    """Each event's JSON, and its row: one pass over the events' fields (read from their ``__dict__``)."""
    texts: list[str] = []
    rows: list[EventRow] = []
    for n, event in enumerate(events):
        fields = event.__dict__
        text = _fields_json(event, fields)
        texts.append(text)
        row = (fields["event_id"], key, fields["kind"], fields["study_id"], fields["subject_id"], text)
        rows.append(_new_row(EventRow, (*row, fields["recorded_at"], n)))
    return texts, tuple(rows)


def record_row(parsed: Parsed, unit_sha256: str, arrival: Arrival, envelope: Envelope) -> RecordRow:
    """Raises ValueError when the record cannot be stored as it is."""
    key = _no_nul(parsed.key)
    record_id = deterministic_id(key)
    study_id = parsed.events[0].study_id if parsed.events else arrival.default_study
    message: str | None = None
    events: tuple[EventRow, ...] = ()
    if not parsed.non_production:
        events_json, events = _event_rows(parsed.events, key)
        message = _no_nul(envelope.message(record_id, key, study_id, events_json), nul="\\u0000")
    raw = storable_text(parsed.raw_redacted) or ""
    return RecordRow(key, record_id, study_id, parsed.source, unit_sha256, raw, parsed.non_production, message, events)


def build_batch(
    units: Iterable[tuple[Unit, Sequence[ParseResult]]], arrival: Arrival, seen: set[str]
) -> tuple[Batch, list[Outcome]]:
    """The rows of these units' results and one outcome per result, in input order.

    ``seen`` holds the keys already written in this transaction; a record repeating one is a duplicate
    (added to ``seen`` as rows are made).
    """
    batch = Batch(arrival)
    envelope = Envelope(arrival)
    outcomes: list[Outcome] = []
    for unit, results in units:
        digest = hashlib.sha256(unit.data).hexdigest()
        for result in results:
            outcomes.append(_add(batch, envelope, result, digest, seen))
    return batch, outcomes


def _add(batch: Batch, envelope: Envelope, result: ParseResult, digest: str, seen: set[str]) -> Outcome:
    if isinstance(result, Rejected):
        return _quarantine(batch, result.source, result.error, digest, result.raw_redacted)
    if result.key in seen:
        return Accepted(result.source, result.key, duplicate=True)
    try:
        row = record_row(result, digest, batch.arrival, envelope)
    except ValueError as error:
        return _quarantine(batch, result.source, f"{result.key}: {error}", digest, result.raw_redacted)
    seen.add(result.key)
    batch.records.append(row)
    return Accepted(result.source, result.key)


def _quarantine(batch: Batch, source: str, error: str, digest: str, raw: str | dict[str, Any] | None) -> Refused:
    error = error.replace("\x00", "\ufffd")
    text = storable_text(raw)
    batch.quarantine.append(QuarantineRow(source, error, digest, text))
    return Refused(source, error, text)
