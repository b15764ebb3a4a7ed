"""MLLP framing (HL7 v2 Minimal Lower Layer Protocol, release 2): ``0x0B`` message ``0x1C 0x0D``.

`FrameDecoder` is sans-I/O: feed it the bytes as they arrive (a frame may be split anywhere, several
frames may come in one read) and it returns each complete message, reading each byte once. Bytes outside
a frame are discarded. A message longer than the limit is never buffered: its first bytes are kept
(enough for the MSH segment, so it can still be answered) and the rest is skipped up to its end block.
"""

from __future__ import annotations

from dataclasses import dataclass

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"
HEAD_KEPT = 4096


def frame(message: bytes) -> bytes:
    """``message`` wrapped for sending."""
    return START_BLOCK + message + END_BLOCK


@dataclass(frozen=True, slots=True)
class Oversized:
    """A message that exceeded the limit: ``head`` is its start, ``size`` how many bytes it had."""

    head: bytes
    size: int


Frame = bytes | Oversized


class FrameDecoder:
    def __init__(self, max_message_bytes: int) -> None:
        self._max = max_message_bytes
        self._buffer = bytearray()  # the current message so far (after its 0x0B)
        self._in_frame = False
        self._held_fs = False  # the last byte read was 0x1C: half of an end block, or data
        self._skipped = 0  # > 0 while dropping an oversized message: its size so far
        self._head = b""

    @property
    def in_message(self) -> bool:
        """True while a message has started but not ended (a read timeout then means a stalled sender)."""
        return self._in_frame

    def feed(self, data: bytes) -> list[Frame]:
        """The messages completed by ``data``, in order."""
        frames: list[Frame] = []
        position = 0
        while position < len(data):
            if self._in_frame:
                position = self._take(data, position, frames)
                continue
            start = data.find(START_BLOCK, position)
            if start < 0:
                break
            self._in_frame = True
            position = start + 1
        return frames

    def _take(self, data: bytes, position: int, frames: list[Frame]) -> int:
        """Adds ``data[position:]`` to the message up to its end block; returns the position after it."""
        if self._held_fs:
            self._held_fs = False
            if data[position] == END_BLOCK[1]:
                self._finish(frames)
                return position + 1
            self._append(END_BLOCK[:1])
        end = data.find(END_BLOCK, position)
        if end >= 0:
            self._append(data[position:end])
            self._finish(frames)
            return end + len(END_BLOCK)
        stop = len(data) - 1 if data.endswith(END_BLOCK[:1]) else len(data)
        self._held_fs = stop < len(data)
        self._append(data[position:stop])
        return len(data)

    def _append(self, chunk: bytes) -> None:
        if not self._skipped and len(self._buffer) + len(chunk) <= self._max:
            self._buffer += chunk
            return
        if not self._skipped:
            self._head = bytes(self._buffer[:HEAD_KEPT]) + chunk[: max(0, HEAD_KEPT - len(self._buffer))]
            self._skipped = len(self._buffer)
            self._buffer.clear()
        self._skipped += len(chunk)

    def _finish(self, frames: list[Frame]) -> None:
        frames.append(Oversized(self._head, self._skipped) if self._skipped else bytes(self._buffer))
        self._buffer.clear()
        self._in_frame = False
        self._skipped = 0
        self._head = b""
