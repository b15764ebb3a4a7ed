"""TrialWatch records: one JSON object per NDJSON line, SDTM-style keys (INTERFACES §1.3, §2).

Rejected: unparseable JSON, an unknown DOMAIN, a missing required key or a wrong type, a STUDYID that is
not configured. Identity: evidence key `REC:<STUDYID>:<DOMAIN>:<RECID>`; dedup key that plus a hash of the
content ignoring RECEIVEDDTC (same RECID and content = duplicate, different content = update).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import orjson

from services.ingest.domain.context import RecordContext
from services.ingest.domain.keys import content_hash, unparseable, without_key
from services.ingest.domain.model import InputError, ParserConfig, ParseResult, Rejected, parsed
from services.ingest.domain.record_clinical import adverse_event, lab_result, vital_sign
from services.ingest.domain.record_fast import usual_record
from services.ingest.domain.record_fields import Record, json_type, moment, required_code, required_text
from services.ingest.domain.record_trial import (
    disposition,
    dose,
    dsmb_decision,
    injection_site,
    regulatory_submission,
)
from services.ingest.domain.terminology import Terminology
from shared.events import Event

Builder = Callable[[Record, RecordContext, str, Terminology], list[Event]]

BUILDERS: dict[str, Builder] = {
    "AE": adverse_event,
    "LB": lab_result,
    "VS": vital_sign,
    "EX": dose,
    "ISR": injection_site,
    "DS": disposition,
    "DSMB": dsmb_decision,
    "REG": regulatory_submission,
}
_STUDY_LEVEL = frozenset(("DSMB",))
_RECEIVED = "RECEIVEDDTC"
_IDENTIFYING_KEYS = frozenset(("BRTHDTC",))  # SDTM DM date of birth: a direct identifier, never stored


def parse_record_line(
    line: bytes | str, config: ParserConfig, *, origin: str, received_at: datetime | None = None
) -> ParseResult:
    """Parse one NDJSON line of TrialWatch records. `origin` names its position (`file:line`)."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        return Rejected(origin, f"record at {origin}: JSON: not valid JSON ({error})", unparseable(line))
    return parse_record(data, config, origin=origin, received_at=received_at)


def _name(data: Record, origin: str) -> str:
    domain, record_id = data.get("DOMAIN"), data.get("RECID")
    if isinstance(domain, str) and isinstance(record_id, str | int) and not isinstance(record_id, bool):
        return f"{domain} record {record_id}"
    return f"record at {origin}"


def _redacted(data: Record) -> Record:
    if _IDENTIFYING_KEYS.isdisjoint(data):
        return data
    return {key: value for key, value in data.items() if key not in _IDENTIFYING_KEYS}


def parse_record(
    data: object, config: ParserConfig, *, origin: str, received_at: datetime | None = None
) -> ParseResult:
    """Validate and normalise one decoded record."""
    if not isinstance(data, dict):
        return Rejected(origin, f"record at {origin}: the line is a JSON {json_type(data)}, not an object")
    usual = usual_record(data, config, received_at)
    if usual is not None:
        key, events = usual
    else:
        try:
            key, events = _events(data, config, received_at)
        except InputError as error:
            return Rejected(origin, f"{_name(data, origin)}: {error}", _redacted(data))
    return parsed(origin, key, events, _redacted(data) if config.keep_raw else None)


def _events(data: Record, config: ParserConfig, received_at: datetime | None) -> tuple[str, list[Event]]:
    domain = required_text(data, "DOMAIN")
    builder = BUILDERS.get(domain)
    if builder is None:
        raise InputError("DOMAIN", f"unknown DOMAIN {domain!r} (expected one of {', '.join(BUILDERS)})")
    study_id = required_text(data, "STUDYID")
    if study_id not in config.study_ids:
        raise InputError("STUDYID", f"{study_id!r} is not a configured study")
    record_id = required_code(data, "RECID")
    subject_id = None if domain in _STUDY_LEVEL else required_text(data, "USUBJID")
    source = f"REC:{study_id}:{domain}:{record_id}"  # INTERFACES §3 evidence key
    key = f"{source}:{content_hash(without_key(data, _RECEIVED))}"
    context = RecordContext(
        study_id, subject_id, key, moment(data, _RECEIVED) or received_at, event_ids=config.event_ids
    )
    return key, builder(data, context, source, config.terminology)
