"""`trialwatch replay` as an outsider runs it (INTERFACES §4): exit codes, streams, positions, study lookup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HL7_TWO_MESSAGES = (
    "MSH|^~\\&|LIS|LAB-A|TRIALWATCH|NIAID|20260212081000||ORU^R01^ORU_R01|CTRL-1|P|2.5.1\r"
    "PID|1||AD-001^^^ANAKINRA-AD^SUBJ||Doe^Jane||20110704|F\r"
    "OBR|1|P1|SPC-1|57021-8^CBC^LN|||20260212081000\r"
    "OBX|1|NM|751-8^ANC^LN||0.8|10*3/uL|1.8-8.0|L|||F\r"
    "MSH|^~\\&|LIS|LAB-A|TRIALWATCH|NIAID|20260213081000||ADT^A01|CTRL-2|P|2.5.1\r"
    "PID|1||AD-002^^^ANAKINRA-AD^SUBJ\r"
)
RECORDS = [
    {
        "DOMAIN": "VS",
        "STUDYID": "ANAKINRA-AD",
        "USUBJID": "AD-001",
        "RECID": "VS-1",
        "VSTESTCD": "TEMP",
        "VSORRES": "37.0",
        "VSORRESU": "C",
        "VSDTC": "2026-02-12T09:00:00",
    },
    {"DOMAIN": "XX", "STUDYID": "ANAKINRA-AD", "USUBJID": "AD-001", "RECID": "X-1"},
    {
        "DOMAIN": "LB",
        "STUDYID": "ANAKINRA-AD",
        "USUBJID": "AD-001",
        "RECID": "LB-1",
        "LBTESTCD": "PLAT",
        "LBORRES": "30",
        "LBORRESU": "10^9/L",
        "LBORNRLO": "150",
        "LBORNRHI": "450",
        "LBDTC": "2026-02-14T08:00:00",
    },
]


def run_replay(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "trialwatch.cli", "replay", *args]
    return subprocess.run(command, capture_output=True, timeout=120, env=env or dict(os.environ), check=False)


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    hl7 = tmp_path / "labs.hl7"
    hl7.write_bytes(HL7_TWO_MESSAGES.encode())
    records = tmp_path / "records.ndjson"
    records.write_text("".join(json.dumps(record) + "\n" for record in RECORDS))
    return hl7, records


def test_signals_on_stdout_rejections_on_stderr_exit_65(inputs: tuple[Path, Path]) -> None:
    hl7, records = inputs
    done = run_replay(str(hl7), str(records))
    assert done.returncode == 65
    signals = [json.loads(line) for line in done.stdout.decode().splitlines()]
    # SAFETY_RULES §2: ANC 0.8 (0.5 <= ANC < 1.0) -> LAB-ANC-3; platelets 30 (25 <= PLT < 50) -> LAB-PLT-3.
    assert [(s["subject_id"], s["rule_id"], s["severity"], s["action"]) for s in signals] == [
        ("AD-001", "LAB-ANC-3", "URGENT", "HOLD_DOSE"),
        ("AD-001", "LAB-PLT-3", "URGENT", "HOLD_DOSE"),
    ]
    assert signals[0]["evidence"] == ["HL7:LAB-A:CTRL-1:1"]
    assert signals[0]["observed_at"] == "2026-02-12T08:10:00Z"
    assert signals[1]["evidence"] == ["REC:ANAKINRA-AD:LB:LB-1"]
    errors = [json.loads(line) for line in done.stderr.decode().splitlines()]
    # The ADT message starts on line 5 of the HL7 file; the unknown DOMAIN is line 2 of the records file.
    assert [e["source"] for e in errors] == [f"{hl7}:5", f"{records}:2"]
    assert all(set(e) == {"source", "error"} and e["error"] for e in errors)
    assert "MSH-9" in errors[0]["error"]
    assert "DOMAIN" in errors[1]["error"]


def test_all_accepted_exits_0_and_ids_are_stable_across_file_names(tmp_path: Path) -> None:
    first = tmp_path / "a.ndjson"
    second = tmp_path / "renamed-copy.ndjson"
    for path in (first, second):
        path.write_text(json.dumps(RECORDS[2]) + "\n")
    one, two = run_replay(str(first)), run_replay(str(second))
    assert (one.returncode, two.returncode) == (0, 0)
    assert one.stderr == b"" and two.stderr == b""
    assert one.stdout == two.stdout
    assert json.loads(one.stdout)["rule_id"] == "LAB-PLT-3"


def test_stdin_is_read_for_dash(inputs: tuple[Path, Path]) -> None:
    _, records = inputs
    command = [sys.executable, "-m", "trialwatch.cli", "replay", "-"]
    done = subprocess.run(command, input=records.read_bytes(), capture_output=True, timeout=120, check=False)
    assert done.returncode == 65
    assert [json.loads(line)["rule_id"] for line in done.stdout.splitlines()] == ["LAB-PLT-3"]
    assert json.loads(done.stderr)["source"] == "-:2"


def test_missing_input_is_a_usage_error_with_no_output(inputs: tuple[Path, Path], tmp_path: Path) -> None:
    hl7, _ = inputs
    done = run_replay(str(hl7), str(tmp_path / "absent.hl7"))
    assert done.returncode == 2
    assert done.stdout == b""


def test_no_input_is_a_usage_error() -> None:
    assert run_replay().returncode == 2


def test_study_from_flag_and_from_environment(tmp_path: Path) -> None:
    record = dict(RECORDS[2], STUDYID="OTHER-STUDY")
    path = tmp_path / "other.ndjson"
    path.write_text(json.dumps(record) + "\n")
    packaged = run_replay(str(path))
    # INTERFACES §2: a STUDYID that is not configured is rejected.
    assert packaged.returncode == 65 and packaged.stdout == b""
    study = tmp_path / "other.yaml"
    repo = Path(__file__).resolve().parents[2]
    text = (repo / "studies" / "anakinra-ad.yaml").read_text()
    study.write_text(text.replace("ANAKINRA-AD", "OTHER-STUDY"))
    by_flag = run_replay("--study", str(study), str(path))
    by_env = run_replay(str(path), env={**os.environ, "TRIALWATCH_STUDY": str(study)})
    for done in (by_flag, by_env):
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["study_id"] == "OTHER-STUDY"


def test_bad_study_file_is_a_usage_error(tmp_path: Path, inputs: tuple[Path, Path]) -> None:
    study = tmp_path / "bad.yaml"
    study.write_text("study_id: X\nunknown_key: 1\n")
    done = run_replay("--study", str(study), str(inputs[1]))
    assert done.returncode == 2
    assert done.stdout == b""
