"""How each MLLP message is answered: an ingest outcome -> an ACK verdict (AA, AE or AR with ERR).

A header problem (no readable MSH, wrong message type, no control id) is ``AR``: the message cannot be
processed at all. A content problem (no PID-3, an unreadable time) is ``AE``. The ERR-3 code (HL7
table 0357) and ERR-2 location come from the field the parser's reason names; ERR-8 is that reason.
"""

from __future__ import annotations

import re

from services.ingest.batch import Accepted, Outcome
from services.ingest.mllp.ack import ACCEPTED, InboundHeader, Verdict

_FIELD = re.compile(r": ([A-Z][A-Z0-9]{2})(?:-(\d+))?(?:\.\d+)*: (.*)", re.DOTALL)
_SINGLE_SEGMENTS = frozenset(("MSH", "PID"))
_HEADER_CODES = {"": "100", "2": "102", "10": "101"}  # unreadable MSH, MSH-2 encoding, MSH-10 missing


def storage_unavailable(error: BaseException) -> Verdict:
    return Verdict(
        "AR",
        f"the message could not be stored ({type(error).__name__}); it was not accepted, send it again",
        "207",
    )


def oversized(size: int, limit: int) -> Verdict:
    return Verdict("AR", f"message of {size} bytes exceeds the limit of {limit} bytes", "104")


def _location(segment: str, field: str) -> str:
    if not field:
        return segment
    return f"{segment}^{'1' if segment in _SINGLE_SEGMENTS else ''}^{field}"


def _message_type_code(header: InboundHeader | None) -> str:
    """200 for a message that is not ORU at all, 201 for ORU with another trigger event."""
    message_type = header.field(9) if header else ""
    return "201" if message_type.split("^", 1)[0] == "ORU" else "200"


def _content_code(reason: str) -> str:
    lowered = reason.lower()
    if "segment" in lowered and ("no " in lowered or "missing" in lowered):
        return "100"
    if "missing" in lowered or "empty" in lowered or lowered.startswith("no "):
        return "101"
    if "not a configured" in lowered or "unknown" in lowered:
        return "103"
    return "102"


def verdict(outcome: Outcome, header: InboundHeader | None) -> Verdict:
    """AA for an accepted message (duplicates and MSH-11 T/D included), else AE or AR with ERR."""
    if isinstance(outcome, Accepted):
        return ACCEPTED
    found = _FIELD.search(outcome.error)
    if found is None:
        return Verdict("AE", outcome.error, "102")
    segment, field, reason = found.group(1), found.group(2) or "", found.group(3)
    location = _location(segment, field)
    if segment == "MSH" and field == "9":
        return Verdict("AR", outcome.error, _message_type_code(header), location)
    if segment == "MSH" and field in _HEADER_CODES:
        return Verdict("AR", outcome.error, _HEADER_CODES[field], location)
    return Verdict("AE", outcome.error, _content_code(reason), location)
