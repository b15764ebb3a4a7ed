"""`trialwatch send` without a stack: format detection, ACK reading, positions, usage errors (exit 2)."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import pytest

from ingest_service.builders import oru
from services.ingest.units import ndjson_units
from trialwatch import send


def test_formats_are_detected_from_content() -> None:
    assert send.detect(oru("C-1")) == "hl7v2"
    assert send.detect(b"\x0b" + oru("C-1")) == "hl7v2"
    assert send.detect(b'{"DOMAIN": "LB", "STUDYID": "S"}\n') == "records"
    assert send.detect(b'{"resourceType": "Observation"}\n') == "fhir"
    assert send.detect(b'{\n  "resourceType": "Bundle"\n}\n') == "fhir"


def test_an_ack_is_read_as_accepted_or_as_its_err_text() -> None:
    assert send.ack_outcome(b"MSH|^~\\&|TW\rMSA|AA|C-1\r") is None
    rejected = b"MSH|^~\\&|TW\rMSA|AE|C-1\rERR||PID^1^3|101^Required field missing^HL70357|E||||PID-3: a \\F\\ b\r"
    assert send.ack_outcome(rejected) == "PID-3: a | b"
    assert send.ack_outcome(b"MSH|^~\\&|TW\rMSA|AR|C-1\r") == "answered MSA|AR|C-1"


def test_request_positions_map_back_to_the_file() -> None:
    units = list(ndjson_units(b"{}\n\n{}\n", "file.ndjson"))
    positions, body = send._body(units, "records")
    assert positions == {"request:1": "file.ndjson:1", "request:2": "file.ndjson:3"}
    assert body == b"{}\n{}"
    error = send._in_file_terms("record at request:2: bad; not request:21", "request:2", "file.ndjson:3")
    assert error == "record at file.ndjson:3: bad; not request:21"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def env_file(tmp_path: Path) -> Path:
    path = tmp_path / "env"
    port = closed_port()
    path.write_text(
        f"TRIALWATCH_STACK=test\nTRIALWATCH_MLLP_PORT={port}\nTRIALWATCH_INGEST_PORT={port}\n"
        f"TRIALWATCH_TOKEN=t0123456789abcdef\nTRIALWATCH_KAFKA_BOOTSTRAP=127.0.0.1:{port}\n"
    )
    return path


def run(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    send.configure(parser)
    return send.run(parser.parse_args(argv))


@pytest.mark.parametrize("content", [oru("C-1"), b'{"DOMAIN": "LB"}\n'])
def test_an_unreachable_stack_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], content: bytes
) -> None:
    monkeypatch.setenv("TRIALWATCH_ENV_FILE", str(env_file(tmp_path)))
    (tmp_path / "input").write_bytes(content)
    assert run(str(tmp_path / "input")) == 2
    assert "unreachable" in capsys.readouterr().err


def test_a_missing_file_or_json_over_mllp_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALWATCH_ENV_FILE", str(env_file(tmp_path)))
    assert run(str(tmp_path / "missing.hl7")) == 2
    (tmp_path / "records.ndjson").write_bytes(b'{"DOMAIN": "LB"}\n')
    assert run("--via", "mllp", str(tmp_path / "records.ndjson")) == 2
