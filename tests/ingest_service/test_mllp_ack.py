"""ACK^R01 per HL7 v2.5.1 original mode: MSH swap, MSA code and control id, ERR for AE/AR."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ingest_service.builders import memory_ingestion, oru
from services.ingest.mllp.ack import ACCEPTED, Verdict, build_ack, escape, read_header
from services.ingest.mllp.verdicts import oversized, storage_unavailable, verdict
from services.ingest.units import Unit

NOW = datetime(2026, 3, 2, 8, 15, 30, tzinfo=UTC)


def segments(ack: bytes) -> list[list[str]]:
    assert ack.endswith(b"\r")
    return [segment.split("|") for segment in ack.decode().split("\r")[:-1]]


def test_accepted_message_gets_aa_with_sender_and_receiver_swapped() -> None:
    header = read_header(oru("CTRL-7", processing="T"))
    msh, msa = segments(build_ack(header, ACCEPTED, now=NOW, control_id="ACK-1"))
    assert msh[:7] == ["MSH", "^~\\&", "TRIALWATCH", "NIAID", "LIS", "NIHCC-LAB", "20260302081530+0000"]
    assert msh[8:] == ["ACK^R01^ACK", "ACK-1", "T", "2.5.1"]
    assert msa == ["MSA", "AA", "CTRL-7"]


def test_rejected_message_gets_an_err_segment_with_table_0357_code_and_text() -> None:
    answer = Verdict("AE", "HL7 message X:1: PID-3: missing | really", "101", "PID^1^3")
    _, msa, err = segments(build_ack(read_header(oru("C-1")), answer, now=NOW, control_id="A"))
    assert msa == ["MSA", "AE", "C-1"]
    assert err[2] == "PID^1^3"
    assert err[3] == "101^Required field missing^HL70357"
    assert err[4] == "E"
    assert err[8] == "HL7 message X:1: PID-3: missing \\F\\ really"


def test_unreadable_header_is_still_answered_with_an_empty_control_id() -> None:
    msh, msa, err = segments(build_ack(read_header(b"junk"), Verdict("AR", "no MSH", "100"), now=NOW, control_id="A"))
    assert msh[2] == "TRIALWATCH"
    assert msa == ["MSA", "AR", ""]
    assert err[3].startswith("100^")


def test_fields_of_a_sender_with_other_encoding_characters_are_re_encoded() -> None:
    message = b"MSH#*!\\$#APP*X#FAC#TW#NIAID#20260302##ORU*R01#C|1#P#2.5.1\rPID#1"
    msh, msa = segments(build_ack(read_header(message), ACCEPTED, now=NOW, control_id="A"))
    assert msh[4:6] == ["APP^X", "FAC"]
    assert msa == ["MSA", "AA", "C\\F\\1"]


def test_escape_turns_delimiters_and_line_breaks_into_escape_sequences() -> None:
    assert escape("a|b^c&d~e\\f\rg") == "a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f g"


async def outcome_of(message: bytes) -> Verdict:
    ingestion, _ = memory_ingestion()
    [outcome] = await ingestion.ingest([Unit(message, "mllp:1:1")], "hl7v2", "mllp")
    return verdict(outcome, read_header(message))


@pytest.mark.parametrize(
    ("message", "code", "error_code", "location"),
    [
        (oru("C-1"), "AA", "", ""),
        (oru("C-1", processing="D"), "AA", "", ""),
        (oru("C-1", message_type="ADT^A01"), "AR", "200", "MSH^1^9"),
        (oru("C-1", message_type="ORU^R30"), "AR", "201", "MSH^1^9"),
        (oru(""), "AR", "101", "MSH^1^10"),
        (oru("C-1", pid3=""), "AE", "101", "PID^1^3"),
        (oru("C-1", sent="2026"), "AE", "102", "MSH^1^7"),
        (b"MSH|^~\\&|L|F|T|N|20260302||ORU^R01|C-2|P|2.5.1\rOBR|1\r", "AE", "100", "PID^1^3"),
        (b"not hl7 at all", "AR", "100", "MSH"),
    ],
)
async def test_each_kind_of_message_gets_its_acknowledgement_code(
    message: bytes, code: str, error_code: str, location: str
) -> None:
    answer = await outcome_of(message)
    assert (answer.code, answer.error_code, answer.location) == (code, error_code, location), answer.error
    if code != "AA":
        assert answer.error


def test_storage_failure_and_oversized_messages_are_application_rejects() -> None:
    assert storage_unavailable(ConnectionRefusedError()).code == "AR"
    assert storage_unavailable(ConnectionRefusedError()).error_code == "207"
    too_big = oversized(2_000_000, 1_048_576)
    assert (too_big.code, too_big.error_code) == ("AR", "104")
    assert "2000000" in too_big.error
