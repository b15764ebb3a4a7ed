"""What the parsers return: one `Parsed` or `Rejected` per source record (INTERFACES §2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from services.ingest.domain.terminology import Terminology, packaged_terminology
from shared.events import Event

#: The copy of a source record that may be stored: direct identifiers blanked (INTERFACES §1.1).
RawRedacted = str | dict[str, Any]


@dataclass(frozen=True, slots=True)
class ParserConfig:
    """Which studies this deployment monitors, and the terminology used to normalise results.

    HL7 and FHIR input carry no STUDYID: it belongs to `default_study_id` unless the subject's PID-3
    repetition is assigned by (PID-3.4 equals) another configured study (SAFETY_RULES §6, "Study and output").
    `keep_raw=False` leaves `Parsed.raw_redacted` None: for callers that store no raw copy (replay), so the
    blanked copy is not built. Rejections always keep theirs. `event_ids=False` leaves every event's
    `event_id` empty: for callers that never publish, store or read the events' ids (replay: the rules
    identify records by dedup key and source, never by event id), so the uuid5 of each is not computed.
    """

    study_ids: frozenset[str]
    default_study_id: str
    terminology: Terminology = field(default_factory=packaged_terminology)
    keep_raw: bool = True
    event_ids: bool = True

    def __post_init__(self) -> None:
        if self.default_study_id not in self.study_ids:
            raise ValueError(f"default study {self.default_study_id!r} is not among the configured studies")


class Parsed(NamedTuple):
    """An accepted source record and the canonical events it yields (possibly none).

    Immutable (a NamedTuple: one is built per input record, a frozen dataclass costs four times more).
    `source` is the record's position (`file:line`, `file:#entry[i]`), `key` its dedup key
    (SAFETY_RULES §6 "Duplicates"). `raw_redacted` is None when the caller keeps no raw copy
    (`ParserConfig.keep_raw`). `non_production` marks HL7 MSH-11 T/D messages: acknowledged (MLLP AA),
    never graded.
    """

    source: str
    key: str
    events: list[Event]
    raw_redacted: RawRedacted | None
    non_production: bool = False


class Rejected(NamedTuple):
    """A record that cannot be parsed or validated; `error` names the record, the field and the reason.

    `raw_redacted` is what quarantine may keep (identifiers blanked); None when nothing safe can be kept.
    """

    source: str
    error: str
    raw_redacted: RawRedacted | None = None


ParseResult = Parsed | Rejected
_new_tuple = tuple.__new__


def parsed(source: str, key: str, events: list[Event], raw_redacted: RawRedacted | None) -> Parsed:
    """`Parsed(source, key, events, raw_redacted)` of a production record, without the keyword handling of
    the named tuple's generated `__new__` (one per NDJSON record: a third of a microsecond less)."""
    return _new_tuple(Parsed, (source, key, events, raw_redacted, False))


class InputError(Exception):
    """Raised inside a parser when a record must be rejected; the record boundary turns it into `Rejected`."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field_name = field_name
        self.reason = reason
