"""Pure parsing and normalisation of every TrialWatch input (INTERFACES §1-§3, SAFETY_RULES §5-§6).

Each source record (an HL7 message, a FHIR resource, a records line) becomes either `Parsed` — its
canonical `shared.events` events, dedup key and identifier-free raw copy — or `Rejected` with a reason
naming the record, the field and the reason. No I/O beyond reading the stream handed in; no clock.

Entry points:
- `parse_stream(stream, config, name=...)`: any format, detected from content (replay, files, stdin).
- `parse_hl7_message`, `parse_fhir_document`, `parse_record_line`: one record of a known format (live).
"""

from services.ingest.domain.fhir import parse_fhir_document
from services.ingest.domain.hl7_message import parse_hl7_message
from services.ingest.domain.model import Parsed, ParserConfig, ParseResult, Rejected
from services.ingest.domain.records import parse_record_line
from services.ingest.domain.stream import parse_stream
from services.ingest.domain.terminology import Terminology, build_terminology, packaged_terminology

__all__ = [
    "ParseResult",
    "Parsed",
    "ParserConfig",
    "Rejected",
    "Terminology",
    "build_terminology",
    "packaged_terminology",
    "parse_fhir_document",
    "parse_hl7_message",
    "parse_record_line",
    "parse_stream",
]
