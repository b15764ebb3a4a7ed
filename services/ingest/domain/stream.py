"""Any input stream -> Parsed | Rejected per source record, in input order (INTERFACES §1, §4 replay).

The format is detected from content: HL7 ER7 (starts with MSH, FHS or BHS, MLLP framing allowed), NDJSON
(FHIR resources or TrialWatch records, one per line) or a single JSON document (a FHIR resource or Bundle,
possibly pretty-printed). HL7 is read message by message and NDJSON line by line; only a single JSON
document is read whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import chain
from typing import BinaryIO

import orjson

from services.ingest.domain.fhir import parse_fhir_document, parse_fhir_json
from services.ingest.domain.hl7_message import decode_er7, parse_er7
from services.ingest.domain.hl7_stream import is_harmless_preamble, split_messages
from services.ingest.domain.keys import unparseable
from services.ingest.domain.model import ParserConfig, ParseResult, Rejected
from services.ingest.domain.records import parse_record

CHUNK_SIZE = 1 << 20
_BOM = b"\xef\xbb\xbf"
_HL7_STARTS = (b"MSH", b"FHS", b"BHS")
_SKIPPED = b" \t\r\n\x0b"


def _chunks(stream: BinaryIO | bytes) -> Iterator[bytes]:
    if isinstance(stream, bytes | bytearray | memoryview):
        yield bytes(stream)
        return
    while chunk := stream.read(CHUNK_SIZE):
        yield chunk


def _head(chunks: Iterator[bytes]) -> bytes:
    """The first bytes holding something other than whitespace (or everything, if there is nothing)."""
    head = b""
    for chunk in chunks:
        head += chunk
        if head.lstrip(_BOM).strip(_SKIPPED):
            break
    return head[len(_BOM) :] if head.startswith(_BOM) else head


def parse_stream(
    stream: BinaryIO | bytes, config: ParserConfig, *, name: str, received_at: datetime | None = None
) -> Iterator[ParseResult]:
    """Detect the format and yield one result per source record, in input order.

    `name` labels positions (`name:line`, `name:#entry[i]`); `received_at` is the ingestion time for
    records that carry none (None in replay: each event's own time, SAFETY_RULES §5).
    """
    chunks = _chunks(stream)
    head = _head(chunks)
    start = head.lstrip(_SKIPPED)
    if not start:
        return
    rest = chain((head,), chunks)
    if start.startswith(_HL7_STARTS):
        yield from _hl7(rest, config, name, received_at)
    elif start.startswith((b"{", b"[")):
        yield from _json(_lines(rest), config, name, received_at)
    else:
        yield Rejected(
            f"{name}:1",
            f"input {name}: format: not HL7 ER7 (MSH), FHIR JSON or NDJSON records",
            unparseable(head[:CHUNK_SIZE]),
        )


def _hl7(
    chunks: Iterable[bytes], config: ParserConfig, name: str, received_at: datetime | None
) -> Iterator[ParseResult]:
    for line, data in split_messages(chunks):
        if data.startswith(b"MSH") or not is_harmless_preamble(data):
            yield parse_er7(decode_er7(data), config, origin=f"{name}:{line}", received_at=received_at)


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    rest = b""
    for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


def _is_line_object(line: bytes, keys: tuple[str, ...] = ()) -> bool:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return isinstance(value, dict) and (not keys or any(key in value for key in keys))


def _json(
    lines: Iterator[bytes], config: ParserConfig, name: str, received_at: datetime | None
) -> Iterator[ParseResult]:
    """NDJSON when the first line is a JSON object by itself (or, that line being broken, the second is a
    resource or record); otherwise, or when there is a single line, one JSON document read whole."""
    head: list[bytes] = []
    significant: list[bytes] = []
    for line in lines:
        head.append(line)
        if line and not line.isspace():
            significant.append(line)
            if len(significant) == 2:
                break
    first_line = next(number for number, line in enumerate(head, 1) if line and not line.isspace())
    if len(significant) == 2 and (
        _is_line_object(significant[0]) or _is_line_object(significant[1], ("resourceType", "DOMAIN"))
    ):
        yield from _ndjson(chain(head, lines), config, name, received_at)  # chain: no generator frame per line
        return
    document = b"\n".join([*head, *lines])
    yield from _document(document, config, name, first_line, received_at)


def _document(
    document: bytes, config: ParserConfig, name: str, line: int, received_at: datetime | None
) -> Iterator[ParseResult]:
    try:
        data = orjson.loads(document)
    except orjson.JSONDecodeError:
        yield from parse_fhir_document(document, config, origin=f"{name}:{line}", received_at=received_at)
        return
    origin = f"{name}:{line}"
    if isinstance(data, dict) and "resourceType" not in data and "DOMAIN" in data:
        yield parse_record(data, config, origin=origin, received_at=received_at)
        return
    yield from parse_fhir_json(data, config, origin=origin, entry_origin=f"{name}:", received_at=received_at)


def _ndjson(
    lines: Iterable[bytes], config: ParserConfig, name: str, received_at: datetime | None
) -> Iterator[ParseResult]:
    fhir_stream: bool | None = None
    for number, line in enumerate(lines, 1):
        if not line or line.isspace():
            continue
        origin = f"{name}:{number}"
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as error:
            kind = "FHIR resource" if fhir_stream else "record"
            yield Rejected(origin, f"{kind} at {origin}: JSON: not valid JSON ({error})", unparseable(line))
            continue
        is_fhir = isinstance(data, dict) and ("resourceType" in data or ("DOMAIN" not in data and fhir_stream))
        if fhir_stream is None and isinstance(data, dict):
            fhir_stream = is_fhir
        if is_fhir:
            yield from parse_fhir_json(data, config, origin=origin, received_at=received_at)
        else:
            yield parse_record(data, config, origin=origin, received_at=received_at)
