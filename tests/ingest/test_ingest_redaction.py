"""Direct identifiers never leave the parser, accepted or rejected (INTERFACES §1.1, §2)."""

from __future__ import annotations

import io

import orjson
import pytest
from ingest_builders import observation, obx

from services.ingest.domain import Parsed, ParserConfig, ParseResult, parse_hl7_message, parse_stream

IDENTIFIERS = [
    "Doe",  # PID-5 family name
    "Jane",  # PID-5 given name
    "Smith",  # PID-6 mother's maiden name
    "20110704",  # PID-7 date of birth
    "Janie",  # PID-9 alias
    "Elm St",  # PID-11 address
    "Bethesda",
    "MONTGOMERY",  # PID-12 county
    "555-0100",  # PID-13 home phone
    "555-0199",  # PID-14 business phone
    "ACCT-42",  # PID-18 account number
    "123-45-6789",  # PID-19 SSN
    "D1234567",  # PID-20 driver's licence
    "MRN-9981",  # other PID-3 repetition (hospital MRN)
    "John",  # NK1 next of kin
    "555-0111",
]

PID = (
    "PID|1|EXT-1|MRN-9981^^^HOSP^MR~AD-001^^^ANAKINRA-AD^SUBJ|ALT-1|Doe^Jane^Q|Smith|20110704|F|Janie|2106-3|"
    "12 Elm St^^Bethesda^MD^20892|MONTGOMERY|(301)555-0100|(301)555-0199|en|S|CHR|ACCT-42|123-45-6789|"
    "D1234567^MD|Smith^Mary"
)
NK1 = "NK1|1|Doe^John|FTH|12 Elm St^^Bethesda^MD|(301)555-0111"


def _message(message_type: str = "ORU^R01", processing: str = "P") -> str:
    return "\r".join(
        [
            f"MSH|^~\\&|LIS|NIHCC-LAB|TW|NIAID|20260302081500||{message_type}|C1|{processing}|2.5.1",
            PID,
            NK1,
            "OBR|1|PL-1|FO-1^LIS|57021-8^CBC^LN|||20260302080000",
            obx("1", "751-8", "0.8"),
        ]
    )


def _assert_clean(results: list[ParseResult]) -> None:
    for result in results:
        texts = [
            result.raw_redacted if isinstance(result.raw_redacted, str) else orjson.dumps(result.raw_redacted).decode()
        ]
        if isinstance(result, Parsed):
            texts += [event.model_dump_json() for event in result.events]
        for text in texts:
            leaked = [identifier for identifier in IDENTIFIERS if identifier in text]
            assert leaked == [], f"{leaked} in {text}"


@pytest.mark.parametrize(
    ("message_type", "processing", "kind"),
    [("ORU^R01", "P", "Parsed"), ("ADT^A01", "P", "Rejected"), ("ORU^R01", "T", "Parsed")],
)
def test_hl7_identifiers_are_blanked(config: ParserConfig, message_type: str, processing: str, kind: str) -> None:
    result = parse_hl7_message(_message(message_type, processing), config, origin="f:1")
    assert type(result).__name__ == kind
    _assert_clean([result])
    assert isinstance(result.raw_redacted, str)
    assert "PID|1||AD-001^^^ANAKINRA-AD^SUBJ|||||F||2106-3|||||en|S|CHR||||\r" in result.raw_redacted
    assert "OBX|1|NM|751-8^Test^LN||0.8|" in result.raw_redacted


def test_hl7_subject_and_result_survive_redaction(config: ParserConfig) -> None:
    result = parse_hl7_message(_message(), config, origin="f:1")
    assert isinstance(result, Parsed)
    assert result.events[0].subject_id == "AD-001"


def test_unreadable_header_still_blanks_pid(config: ParserConfig) -> None:
    result = parse_hl7_message("MSH|x\r" + PID + "\r" + NK1 + "\r", config, origin="f:1")
    _assert_clean([result])
    assert result.raw_redacted == "MSH|x\rPID|1||AD-001^^^ANAKINRA-AD^SUBJ|||||F||2106-3|||||en|S|CHR||||\r"


def test_fhir_patient_resources_and_names_are_dropped(config: ParserConfig) -> None:
    patient = {"resourceType": "Patient", "id": "AD-003", "name": [{"family": "Doe", "given": ["Jane"]}]}
    contained = observation(
        contained=[patient],
        subject={"reference": "Patient/AD-003", "display": "Jane Doe"},
        text={"status": "generated", "div": "<div>Jane Doe, born 20110704</div>"},
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": patient}, {"resource": contained}, {"resource": {**contained, "status": "bogus"}}],
    }
    results = list(parse_stream(orjson.dumps(bundle), config, name="b.json"))
    assert [type(r).__name__ for r in results] == ["Parsed", "Rejected"]
    _assert_clean(results)


def test_top_level_patient_is_rejected_keeping_only_its_type_and_id(config: ParserConfig) -> None:
    patient = {"resourceType": "Patient", "id": "p1", "name": [{"family": "Doe"}], "birthDate": "2011-07-04"}
    (result,) = parse_stream(io.BytesIO(orjson.dumps(patient)), config, name="p.json")
    assert result.raw_redacted == {"resourceType": "Patient", "id": "p1"}


def test_record_date_of_birth_is_not_kept(config: ParserConfig) -> None:
    line = orjson.dumps({"DOMAIN": "DM", "STUDYID": "ANAKINRA-AD", "RECID": "1", "BRTHDTC": "2011-07-04"})
    results = list(parse_stream(line + b"\n" + line, config, name="r.ndjson"))
    assert [r.raw_redacted for r in results] == [{"DOMAIN": "DM", "STUDYID": "ANAKINRA-AD", "RECID": "1"}] * 2
