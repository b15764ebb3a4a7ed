"""ER7 streams: many messages, any terminator, MLLP framing, positions of MSH lines (INTERFACES §1.1, §4)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from ingest_builders import obx, oru

from services.ingest.domain import Parsed, ParserConfig, Rejected, parse_stream
from services.ingest.domain.hl7_stream import split_messages

SPEC_SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "spec_samples"  # copies of INTERFACES' samples

THREE = [
    oru(obx("1", "751-8", "0.9"), obx("2", "777-3", "30"), control="M1"),
    oru(obx("1", "751-8", "1.9"), control="M2"),
    oru(
        obx("1", "718-7", "7.5", "g/dL"), obx("2", "4544-3", "30", "%"), obx("3", "1742-6", "300", "U/L"), control="M3"
    ),
]


def _results(data: bytes, config: ParserConfig) -> list[Parsed | Rejected]:
    return list(parse_stream(io.BytesIO(data), config, name="labs.hl7"))


@pytest.mark.parametrize("terminator", ["\r", "\n", "\r\n"])
def test_many_messages_with_their_msh_lines(config: ParserConfig, terminator: str) -> None:
    data = "".join(THREE).replace("\r", terminator).encode()
    results = _results(data, config)
    assert [(r.source, type(r).__name__) for r in results] == [
        ("labs.hl7:1", "Parsed"),
        ("labs.hl7:6", "Parsed"),
        ("labs.hl7:10", "Parsed"),
    ]
    assert [len(r.events) for r in results if isinstance(r, Parsed)] == [2, 1, 2]


def test_mllp_framed_file(config: ParserConfig) -> None:
    data = "".join(f"\x0b{message}\x1c\r" for message in THREE).encode()
    results = _results(data, config)
    assert [r.source for r in results] == ["labs.hl7:1", "labs.hl7:7", "labs.hl7:12"]
    assert [r.key for r in results if isinstance(r, Parsed)] == [f"HL7:NIHCC-LAB:M{n}" for n in (1, 2, 3)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64])
def test_splitting_does_not_depend_on_chunk_boundaries(size: int) -> None:
    data = "".join(THREE).replace("\r", "\r\n").encode()
    chunks = [data[i : i + size] for i in range(0, len(data), size)]
    assert list(split_messages(chunks)) == list(split_messages([data]))
    assert [line for line, _ in split_messages(chunks)] == [1, 6, 10]


def test_batch_headers_are_ignored(config: ParserConfig) -> None:
    data = ("FHS|^~\\&|LIS\rBHS|^~\\&|LIS\r" + "".join(THREE) + "BTS|3\rFTS|1\r").encode()
    results = _results(data, config)
    assert [r.source for r in results] == ["labs.hl7:3", "labs.hl7:8", "labs.hl7:12"]
    assert all(isinstance(r, Parsed) for r in results)


def test_a_bad_message_never_stops_the_others(config: ParserConfig) -> None:
    bad = oru(obx("1", "751-8", "1"), control="BAD", message_type="ADT^A08")
    data = (THREE[0] + bad + THREE[1]).encode()
    results = _results(data, config)
    assert [type(r).__name__ for r in results] == ["Parsed", "Rejected", "Parsed"]
    assert results[1].source == "labs.hl7:6"
    assert isinstance(results[1], Rejected)
    assert results[1].error == "HL7 message NIHCC-LAB:BAD: MSH-9: message type 'ADT^A08' is not ORU^R01"


def test_segments_before_the_first_msh_are_rejected(config: ParserConfig) -> None:
    results = _results(("FHS|^~\\&|LIS\rZZZ|junk\r" + THREE[0]).encode(), config)
    assert [(r.source, type(r).__name__) for r in results] == [("labs.hl7:1", "Rejected"), ("labs.hl7:3", "Parsed")]
    assert isinstance(results[0], Rejected)
    assert results[0].error == (
        "HL7 message at labs.hl7:1: MSH: the message does not start with a readable MSH segment"
    )


def test_input_of_no_known_format_is_one_rejection(config: ParserConfig) -> None:
    results = _results(b"MSG|junk\rMSH|^~\\&|x\r", config)
    assert [(r.source, type(r).__name__) for r in results] == [("labs.hl7:1", "Rejected")]
    assert isinstance(results[0], Rejected)
    assert results[0].error == "input labs.hl7: format: not HL7 ER7 (MSH), FHIR JSON or NDJSON records"


def test_leading_blank_lines_and_bom(config: ParserConfig) -> None:
    results = _results(b"\xef\xbb\xbf\n\n" + THREE[1].encode(), config)
    assert [(r.source, type(r).__name__) for r in results] == [("labs.hl7:3", "Parsed")]


def test_sample_file_from_the_spec(config: ParserConfig) -> None:
    with open(SPEC_SAMPLES / "oru_r01.hl7", "rb") as sample:
        results = list(parse_stream(sample, config, name="oru_r01.hl7"))
    assert [r.source for r in results] == ["oru_r01.hl7:1", "oru_r01.hl7:9"]
    assert [len(r.events) for r in results if isinstance(r, Parsed)] == [4, 3]
