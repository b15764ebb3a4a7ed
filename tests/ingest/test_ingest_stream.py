"""Format detection, positions and streaming of `parse_stream` (INTERFACES §1, §4)."""

from __future__ import annotations

import io
from typing import Any

import orjson
import pytest
from ingest_builders import FIXTURES, adverse_event, observation, obx, oru, record

from services.ingest.domain import Parsed, ParserConfig, Rejected, parse_stream
from services.ingest.domain import stream as stream_module


def _positions(data: bytes, config: ParserConfig, name: str = "in") -> list[tuple[str, str]]:
    return [(r.source, type(r).__name__) for r in parse_stream(io.BytesIO(data), config, name=name)]


def _ndjson(*items: Any) -> bytes:
    return b"\n".join(item if isinstance(item, bytes) else orjson.dumps(item) for item in items) + b"\n"


def test_records_ndjson_line_by_line_with_blank_lines_and_crlf(config: ParserConfig) -> None:
    good = record("DS", DSDECOD="ENROLLED", DSSTDTC="2026-01-02")
    data = _ndjson(good, b"", b"{broken", good | {"RECID": "DS-2"}, b"  ").replace(b"\n", b"\r\n")
    assert _positions(data, config) == [("in:1", "Parsed"), ("in:3", "Rejected"), ("in:4", "Parsed")]


def test_first_line_broken_is_still_ndjson(config: ParserConfig) -> None:
    data = _ndjson(b'{"DOMAIN": "DS"', record("DS", DSDECOD="ENROLLED", DSSTDTC="2026-01-02"))
    assert _positions(data, config) == [("in:1", "Rejected"), ("in:2", "Parsed")]


def test_fhir_ndjson_with_a_bundle_line_and_a_rejected_patient(config: ParserConfig) -> None:
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [{"resource": adverse_event()}]}
    data = _ndjson(observation(), {"resourceType": "Patient", "id": "p"}, bundle, {"id": "x"})
    assert _positions(data, config) == [
        ("in:1", "Parsed"),
        ("in:2", "Rejected"),
        ("in:3#entry[0]", "Parsed"),
        ("in:4", "Rejected"),
    ]
    last = list(parse_stream(data, config, name="in"))[-1]
    assert isinstance(last, Rejected)
    assert last.error == "FHIR resource/x: resourceType: missing (Observation, AdverseEvent or Bundle)"


def test_pretty_printed_bundle_is_one_document(config: ParserConfig) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": observation()}, {"resource": adverse_event()}],
    }
    pretty = orjson.dumps(bundle, option=orjson.OPT_INDENT_2)
    assert _positions(pretty, config, "b.json") == [("b.json:#entry[0]", "Parsed"), ("b.json:#entry[1]", "Parsed")]
    assert _positions(orjson.dumps(bundle) + b"\n", config, "b.json") == [
        ("b.json:#entry[0]", "Parsed"),
        ("b.json:#entry[1]", "Parsed"),
    ]


def test_single_resource_and_single_record_documents(config: ParserConfig) -> None:
    assert _positions(b"\n" + orjson.dumps(observation(), option=orjson.OPT_INDENT_2), config) == [("in:2", "Parsed")]
    assert _positions(orjson.dumps(record("DS", DSDECOD="ENROLLED", DSSTDTC="2026-01-02")), config) == [
        ("in:1", "Parsed")
    ]


def test_broken_document_is_one_rejection(config: ParserConfig) -> None:
    results = list(parse_stream(b'{\n  "resourceType": "Bundle",\n  "entry": [\n', config, name="b.json"))
    assert [(r.source, type(r).__name__) for r in results] == [("b.json:1", "Rejected")]


@pytest.mark.parametrize("data", [b"", b"   \n\r\n", b"\xef\xbb\xbf"])
def test_empty_input_yields_nothing(config: ParserConfig, data: bytes) -> None:
    assert _positions(data, config) == []


def test_byte_order_mark_is_ignored(config: ParserConfig) -> None:
    data = b"\xef\xbb\xbf" + _ndjson(
        record("DS", DSDECOD="ENROLLED", DSSTDTC="2026-01-02"),
        record("DS", RECID="2", DSDECOD="ENROLLED", DSSTDTC="2026-01-02"),
    )
    assert _positions(data, config) == [("in:1", "Parsed"), ("in:2", "Parsed")]


class _CountingReader(io.RawIOBase):
    """A stream that counts the bytes handed out, to prove results come before the input is exhausted."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._data.read(size)
        self.consumed += len(chunk)
        return chunk


@pytest.mark.parametrize("kind", ["records", "hl7"])
def test_large_inputs_are_streamed(config: ParserConfig, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    monkeypatch.setattr(stream_module, "CHUNK_SIZE", 4096)
    if kind == "records":
        data = _ndjson(*(record("DS", RECID=str(n), DSDECOD="ENROLLED", DSSTDTC="2026-01-02") for n in range(5000)))
    else:
        data = "".join(oru(obx("1", "751-8", "1"), control=f"C{n}") for n in range(2000)).encode()
    reader = _CountingReader(data)
    results = parse_stream(reader, config, name="big")  # type: ignore[arg-type]
    assert isinstance(next(results), Parsed)
    assert reader.consumed <= 2 * 4096 < len(data)
    assert sum(1 for _ in results) == (4999 if kind == "records" else 1999)


def test_fixture_files_of_every_format(config: ParserConfig) -> None:
    found = {}
    for path in sorted(FIXTURES.iterdir()):
        with path.open("rb") as handle:
            found[path.name] = [(r.source, type(r).__name__) for r in parse_stream(handle, config, name=path.name)]
    assert found == {
        "all_domains.ndjson": [(f"all_domains.ndjson:{n}", "Parsed") for n in range(1, 10)],
        "mixed_terminators_mllp.hl7": [
            ("mixed_terminators_mllp.hl7:1", "Parsed"),
            ("mixed_terminators_mllp.hl7:6", "Parsed"),
            ("mixed_terminators_mllp.hl7:11", "Rejected"),
        ],
        "transaction_bundle.json": [
            ("transaction_bundle.json:#entry[1]", "Parsed"),
            ("transaction_bundle.json:#entry[2]", "Parsed"),
            ("transaction_bundle.json:#entry[4]", "Rejected"),
        ],
    }
