"""Splitting an ER7 byte stream into messages, message by message (INTERFACES §1.1, §4).

A message starts at its `MSH` segment. Terminators `\\r`, `\\n` and `\\r\\n` each end one line; MLLP framing
bytes (0x0B, 0x1C) are dropped, so a framed file reads like an unframed one. Line numbers count segments
(blank lines included), so `file:line` points at the MSH line in any editor that honours the terminator.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

_BOUNDARY = b"\rMSH"
_BATCH_SEGMENTS = (b"FHS", b"BHS", b"BTS", b"FTS")


def _normalise(chunk: bytes) -> bytes:
    if b"\n" in chunk:
        chunk = chunk.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    if b"\x0b" in chunk or b"\x1c" in chunk:
        chunk = chunk.replace(b"\x0b", b"").replace(b"\x1c", b"")
    return chunk


def split_messages(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line of the MSH segment, normalised message) for each message, in input order.

    Text before the first MSH comes out first as it is (line 1); `is_harmless_preamble` tells whether it
    is harmless (blank or HL7 batch header segments).
    """
    line = 1
    tail = b""
    prefix = b""
    held_cr = False
    for chunk in chunks:
        data = b"\r" + chunk if held_cr else chunk
        held_cr = data.endswith(b"\r")  # a \r\n may straddle two chunks
        tail += _normalise(data[:-1] if held_cr else data)
        parts = tail.split(_BOUNDARY)
        tail = parts.pop()
        for part in parts:
            yield line, prefix + part
            line += part.count(b"\r") + 1
            prefix = b"MSH"
    if held_cr:
        tail += b"\r"
    if tail:
        yield line, prefix + tail


def is_harmless_preamble(data: bytes) -> bool:
    """True for text before the first MSH that holds only blank lines and batch segments (FHS/BHS/BTS/FTS)."""
    return all(not segment.strip() or segment.startswith(_BATCH_SEGMENTS) for segment in data.split(b"\r"))
