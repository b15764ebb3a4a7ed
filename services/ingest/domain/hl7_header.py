"""HL7 v2.5.1 message header (MSH) and subject (PID-3, PID-7 for ages) of an ER7 message (INTERFACES §1.1)."""

from __future__ import annotations

from datetime import date, datetime
from typing import NamedTuple

from services.ingest.domain.age import birth_date
from services.ingest.domain.model import InputError, ParserConfig
from services.ingest.domain.times import hl7_time


class Header(NamedTuple):
    """What the rest of the message is read with: the MSH encoding characters and identity fields."""

    field_sep: str
    component_sep: str
    repetition_sep: str
    subcomponent_sep: str
    facility: str
    control_id: str
    sent_at: datetime | None
    processing_id: str
    message_type: str


#: The usual encoding characters, for reading what a message without a readable MSH still holds.
DEFAULT_ENCODING = Header("|", "^", "~", "&", "", "", None, "", "")


def _component(field: str, separator: str) -> str:
    return field.split(separator, 1)[0].strip()


def read_header(segment: str) -> Header:
    """MSH fields; raises InputError for a header that cannot be read (MSH-1/MSH-2, MSH-7)."""
    if not segment.startswith("MSH") or len(segment) < 8:
        raise InputError("MSH", "the message does not start with a readable MSH segment")
    field_sep = segment[3]
    fields = segment.split(field_sep)  # at least two: segment[3] is the separator
    encoding = fields[1]
    if len(encoding) < 2 or field_sep in encoding:
        raise InputError("MSH-2", f"encoding characters {encoding!r} are not like '^~\\&'")
    if len(fields) < 12:
        fields += [""] * (12 - len(fields))
    component = encoding[0]
    sent_text = fields[6].strip()
    sent_at = hl7_time(sent_text) if sent_text else None
    if sent_text and sent_at is None:
        raise InputError("MSH-7", f"{sent_text!r} is not an HL7 date/time (YYYYMMDD[HHMM[SS]][+/-ZZZZ])")
    return Header(  # in field order (positional: cheaper on the hot path)
        field_sep,
        component,
        encoding[1],
        encoding[3] if len(encoding) > 3 else "&",
        fields[3].strip(),
        fields[9].strip(),
        sent_at,
        _component(fields[10], component),
        fields[8].strip(),
    )


def check_oru(header: Header) -> None:
    """INTERFACES §2: only ORU^R01 with a control id (MSH-10) is accepted."""
    parts = header.message_type.split(header.component_sep)
    if parts[0] != "ORU" or len(parts) < 2 or parts[1] != "R01":
        raise InputError("MSH-9", f"message type {header.message_type!r} is not ORU^R01")
    if not header.control_id:
        raise InputError("MSH-10", "message control id is missing")


def subject_repetition(
    pid3: str, config: ParserConfig, header: Header = DEFAULT_ENCODING
) -> tuple[str, str, str] | None:
    """(subject id, study id, repetition text) from PID-3 (INTERFACES §1.1); None when no id is given.

    The repetition whose assigning authority (PID-3.4) is a configured study wins; else the first
    repetition with an id, in the default study.
    """
    first: tuple[str, str, str] | None = None
    for repetition in pid3.split(header.repetition_sep):
        components = repetition.split(header.component_sep)
        subject = components[0].strip()
        if not subject:
            continue
        authority = _component(components[3], header.subcomponent_sep) if len(components) > 3 else ""
        if authority in config.study_ids:
            return subject, authority, repetition
        if first is None:
            first = (subject, config.default_study_id, repetition)
    return first


def read_subject(segment: str, header: Header, config: ParserConfig) -> tuple[str, str]:
    """(subject id, study id) of a PID segment; raises InputError when PID-3 holds no identifier."""
    fields = segment.split(header.field_sep)
    found = subject_repetition(fields[3], config, header) if len(fields) > 3 else None
    if found is None:
        raise InputError("PID-3", "patient identifier list is missing or empty")
    return found[0], found[1]


def read_birth_date(segment: str, header: Header) -> date | None:
    """PID-7, only to compute ages at collection (`services.ingest.domain.age`); None when absent or
    unreadable (it is not needed to grade, so it never rejects a message)."""
    fields = segment.split(header.field_sep, 8)
    return birth_date(fields[7]) if len(fields) > 7 else None
