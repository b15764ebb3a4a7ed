"""MLLP framing: 0x0B message 0x1C 0x0D, split anywhere, many per read, oversized ones skipped."""

from __future__ import annotations

from ingest_service.builders import oru
from services.ingest.mllp.framing import FrameDecoder, Oversized, frame


def feed_in_pieces(decoder: FrameDecoder, data: bytes, size: int) -> list[object]:
    found: list[object] = []
    for start in range(0, len(data), size):
        found += decoder.feed(data[start : start + size])
    return found


def test_three_frames_in_one_read_give_three_messages_in_order() -> None:
    messages = [oru("C-1"), oru("C-2"), oru("C-3")]
    assert FrameDecoder(1 << 20).feed(b"".join(frame(m) for m in messages)) == messages


def test_a_frame_split_at_every_byte_boundary_is_reassembled() -> None:
    messages = [oru("C-1"), oru("C-2")]
    stream = b"".join(frame(m) for m in messages)
    for size in (1, 2, 3, 7, 64, len(stream) - 1):
        assert feed_in_pieces(FrameDecoder(1 << 20), stream, size) == messages, size


def test_end_block_split_between_reads_still_ends_the_frame() -> None:
    decoder = FrameDecoder(1 << 20)
    assert decoder.feed(b"\x0bMSH|a\x1c") == []
    assert decoder.in_message
    assert decoder.feed(b"\x0d") == [b"MSH|a"]
    assert not decoder.in_message


def test_bytes_outside_frames_are_discarded() -> None:
    decoder = FrameDecoder(1 << 20)
    assert decoder.feed(b"noise\r\n" + frame(b"MSH|1") + b"\r\n\r\n" + frame(b"MSH|2")) == [b"MSH|1", b"MSH|2"]


def test_an_empty_frame_is_a_message_with_no_bytes() -> None:
    assert FrameDecoder(1 << 20).feed(frame(b"")) == [b""]


def test_an_oversized_message_is_skipped_keeping_its_head_and_the_next_frame_survives() -> None:
    big = b"MSH|^~\\&|LIS|LAB|TW|NIAID|20260302||ORU^R01|BIG-1|P|2.5.1\r" + b"X" * 5000
    stream = frame(big) + frame(b"MSH|next")
    for size in (1, 100, 4096, len(stream)):
        found = feed_in_pieces(FrameDecoder(2048), stream, size)
        assert len(found) == 2, size
        assert isinstance(found[0], Oversized)
        assert found[0].size == len(big)
        assert found[0].head.startswith(b"MSH|^~\\&|LIS|LAB")
        assert found[1] == b"MSH|next"


def test_a_message_exactly_at_the_limit_is_kept() -> None:
    message = b"M" * 2048
    assert FrameDecoder(2048).feed(frame(message)) == [message]


def test_a_file_separator_byte_that_is_not_an_end_block_stays_in_the_message() -> None:
    decoder = FrameDecoder(1 << 20)
    assert decoder.feed(b"\x0bab\x1c") == []
    assert decoder.feed(b"cd\x1c\r") == [b"ab\x1ccd"]
