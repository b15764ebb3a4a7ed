"""Splitting a request body (or Kafka message) into source units: what one parser call reads.

A unit is an HL7 message, an NDJSON line, or a whole FHIR JSON document (a resource or a Bundle). Each
unit carries its bytes (hashed for the raw copy) and its position ``name:line`` (INTERFACES §4 style:
the line where the record starts, counting ``\\r``, ``\\n`` and ``\\r\\n`` as one terminator each).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import orjson

Format = Literal["hl7v2", "fhir", "records"]

_BOM = b"\xef\xbb\xbf"
_BOUNDARY = b"\rMSH"
_BATCH_SEGMENTS = (b"FHS", b"BHS", b"BTS", b"FTS")


@dataclass(frozen=True, slots=True)
class Unit:
    """One source unit as received. ``entry_origin`` prefixes Bundle entry positions (``name:#entry[i]``)."""

    data: bytes
    origin: str
    entry_origin: str | None = None


def normalise_er7(data: bytes) -> bytes:
    """Terminators become ``\\r``; MLLP framing bytes are dropped (a framed file reads like a plain one)."""
    data = data.removeprefix(_BOM).translate(None, b"\x0b\x1c")
    if b"\n" in data:
        data = data.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    return data


def _harmless(preamble: bytes) -> bool:
    """Blank lines and HL7 batch segments before the first MSH carry no record."""
    return all(not line.strip() or line.startswith(_BATCH_SEGMENTS) for line in preamble.split(b"\r"))


def hl7_units(data: bytes, name: str) -> Iterator[Unit]:
    """One unit per message, each starting at its MSH segment; other text before the first MSH is a unit
    of its own (the parser rejects it)."""
    text = normalise_er7(data)
    line, start = 1, 0
    if not text.startswith(b"MSH"):
        first = text.find(_BOUNDARY)
        preamble = text if first < 0 else text[:first]
        if not _harmless(preamble):
            yield Unit(preamble, f"{name}:1")
        if first < 0:
            return
        line, start = line + preamble.count(b"\r") + 1, first + 1
    while start < len(text):
        end = text.find(_BOUNDARY, start)
        stop = len(text) if end < 0 else end + 1
        message = text[start:stop]
        yield Unit(message, f"{name}:{line}")
        line += message.count(b"\r")
        start = stop


def ndjson_units(data: bytes, name: str) -> Iterator[Unit]:
    """One unit per non-blank line."""
    data = data.removeprefix(_BOM)
    number, start = 0, 0
    while start < len(data):
        end = data.find(b"\n", start)
        stop = len(data) if end < 0 else end
        number += 1
        line = data[start:stop].rstrip(b"\r")
        if line.strip():
            yield Unit(line, f"{name}:{number}")
        start = stop + 1


def _first_lines(data: bytes, wanted: int) -> list[tuple[int, bytes]]:
    found: list[tuple[int, bytes]] = []
    for unit in ndjson_units(data, ""):
        found.append((int(unit.origin[1:]), unit.data))
        if len(found) == wanted:
            break
    return found


def _is_object(line: bytes) -> bool:
    try:
        return isinstance(orjson.loads(line), dict)
    except orjson.JSONDecodeError:
        return False


def fhir_units(data: bytes, name: str) -> Iterator[Unit]:
    """NDJSON (one resource per line) when the first of several lines is a JSON object by itself,
    otherwise one JSON document (a resource or a Bundle, possibly pretty-printed)."""
    data = data.removeprefix(_BOM)
    lines = _first_lines(data, 2)
    if not lines:
        return
    if len(lines) == 2 and _is_object(lines[0][1]):
        yield from ndjson_units(data, name)
        return
    yield Unit(data, f"{name}:{lines[0][0]}", entry_origin=f"{name}:")


def split_units(data: bytes, fmt: Format, name: str) -> Iterator[Unit]:
    if fmt == "hl7v2":
        return hl7_units(data, name)
    if fmt == "fhir":
        return fhir_units(data, name)
    return ndjson_units(data, name)
