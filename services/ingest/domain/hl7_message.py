"""One HL7 v2.5.1 ORU^R01 message (ER7) -> Parsed | Rejected (INTERFACES §1.1, §2).

Identity: dedup key `HL7:<MSH-4>:<MSH-10>` (SAFETY_RULES §6: a re-sent control id is a duplicate whatever
its content); evidence key of each result `HL7:<MSH-4>:<MSH-10>:<OBX-1>`. MSH-11 T/D messages are accepted
(so MLLP can answer AA) but yield no events. Ingestion time: MSH-7, else the caller's `received_at`.
"""

from __future__ import annotations

from datetime import datetime

from services.ingest.domain.context import RecordContext
from services.ingest.domain.hl7_header import Header, check_oru, read_birth_date, read_header, read_subject
from services.ingest.domain.hl7_redact import redact_message
from services.ingest.domain.hl7_results import (
    Order,
    observation_profile,
    read_observation,
    read_order,
    usual_lab_event,
)
from services.ingest.domain.keys import hl7_dedup_key
from services.ingest.domain.model import InputError, Parsed, ParserConfig, ParseResult, Rejected
from services.ingest.domain.results import result_event
from shared.events import Event

_NON_PRODUCTION = frozenset(("T", "D"))  # HL7 table 0103 processing id: training/test, debugging
_OBX_FIELDS = 15


def decode_er7(message: bytes) -> str:
    """HL7 v2 text: UTF-8 when it is valid UTF-8, else ISO 8859-1 (every byte readable, nothing lost)."""
    try:
        return message.decode("utf-8")
    except UnicodeDecodeError:
        return message.decode("latin-1")


def normalise_er7(text: str) -> str:
    """Segment terminators `\\r\\n` and `\\n` become `\\r`; MLLP framing bytes (0x0B, 0x1C) are dropped."""
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    if "\x0b" in text or "\x1c" in text:
        text = text.replace("\x0b", "").replace("\x1c", "")
    return text


def parse_hl7_message(
    message: bytes | str, config: ParserConfig, *, origin: str, received_at: datetime | None = None
) -> ParseResult:
    """Parse one ER7 message (any terminator, MLLP framing tolerated). `origin` names its position."""
    text = decode_er7(message) if isinstance(message, bytes) else message
    return parse_er7(normalise_er7(text), config, origin=origin, received_at=received_at)


def parse_er7(text: str, config: ParserConfig, *, origin: str, received_at: datetime | None = None) -> ParseResult:
    """Parse one normalised message (segments terminated by `\\r`, no MLLP bytes)."""
    segments = _segments(text)
    header: Header | None = None
    try:
        header = read_header(segments[0] if segments else "")
        check_oru(header)
        key = hl7_dedup_key(header.facility, header.control_id)
        if header.processing_id in _NON_PRODUCTION:
            return Parsed(origin, key, [], _kept(segments, header, config), non_production=True)
        events = _events(segments, header, config, key, received_at)
    except InputError as error:
        name = f"HL7 message {header.facility}:{header.control_id}" if header and header.control_id else None
        return Rejected(
            origin,
            f"{name or 'HL7 message at ' + origin}: {error}",
            redact_message(segments, header, config),
        )
    return Parsed(origin, key, events, _kept(segments, header, config))


def _segments(text: str) -> list[str]:
    """The non-empty segments; usually only the final terminator leaves an empty one, dropped cheaply."""
    segments = text.split("\r")
    if not segments[-1]:
        segments.pop()
    if "" in segments:
        segments = [segment for segment in segments if segment]
    return segments


def _kept(segments: list[str], header: Header, config: ParserConfig) -> str | None:
    return redact_message(segments, header, config) if config.keep_raw else None


def _events(
    segments: list[str],
    header: Header,
    config: ParserConfig,
    key: str,
    received_at: datetime | None,
) -> list[Event]:
    """Walk PID / OBR / OBX in order: each OBX belongs to the latest PID (subject) and OBR (specimen)."""
    terminology = config.terminology
    field_sep, component = header.field_sep, header.component_sep
    source_prefix = key + ":"
    order = Order(f"HL7:{header.facility}:{header.control_id}#OBR0", None, "")
    context: RecordContext | None = None
    events: list[Event] = []
    orders = observations = 0
    for segment in segments:
        tag = segment[:3]
        if tag == "OBX":
            observations += 1
            if context is None:
                raise InputError("PID-3", "no PID segment precedes the results")
            fields = segment.split(field_sep)
            if len(fields) < _OBX_FIELDS:
                fields += [""] * (_OBX_FIELDS - len(fields))
            profile = observation_profile(terminology, fields[3], fields[6], fields[7], component)
            if profile is None:
                continue  # not a test TrialWatch grades: accepted, ignored
            source = source_prefix + (fields[1].strip() or str(observations))
            event: Event | None = usual_lab_event(
                fields, order, profile, terminology, context, source=source, ordinal=observations
            )
            if event is None:
                result = read_observation(fields, header, order, profile, terminology)
                event = result_event(context, result, source, observations)
            events.append(event)
        elif tag == "OBR":
            orders += 1
            order = read_order(segment, header, orders)
        elif tag == "PID":
            subject, study = read_subject(segment, header, config)
            born = read_birth_date(segment, header)
            recorded_at = header.sent_at or received_at
            context = RecordContext(study, subject, key, recorded_at, born, event_ids=config.event_ids)
    if context is None:
        raise InputError("PID-3", "the message has no PID segment")
    return events
