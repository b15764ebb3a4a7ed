"""The storable copy of an HL7 message: direct identifiers blanked (INTERFACES §1.1).

PID-5 name, PID-7 date of birth, PID-11 address, PID-13/14 phones and PID-19 SSN, plus the other PID
fields and segments listed under `redaction` in `data/terminology.yaml`, never leave the parser: raw copies
and quarantine included. PID-3 keeps only the repetition that names the study subject.
"""

from __future__ import annotations

from services.ingest.domain.hl7_header import DEFAULT_ENCODING, Header, subject_repetition
from services.ingest.domain.model import ParserConfig


def _redact_pid(segment: str, header: Header | None, config: ParserConfig) -> str:
    field_sep = segment[3:4] or "|"  # the segment's own separator: safe even when MSH was unreadable
    fields = segment.split(field_sep)
    for number in config.terminology.pid_redacted_fields:
        if number < len(fields):
            fields[number] = ""
    if len(fields) > 3:
        found = subject_repetition(fields[3], config, header or DEFAULT_ENCODING)
        fields[3] = found[2] if found is not None else ""
    return field_sep.join(fields)


def redact_message(segments: list[str], header: Header | None, config: ParserConfig) -> str:
    """The message with identifiers blanked, segments terminated by `\\r` (ER7)."""
    dropped = config.terminology.dropped_segments
    kept = []
    for segment in segments:
        tag = segment[:3]
        if tag == "PID":
            kept.append(_redact_pid(segment, header, config))
        elif tag not in dropped:
            kept.append(segment)
    return "\r".join(kept) + "\r" if kept else ""
