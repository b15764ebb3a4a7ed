"""One ORU^R01 message -> events (INTERFACES §1.1, §3; SAFETY_RULES §5-§6)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from ingest_builders import obx, oru, parsed, rejected

from services.ingest.domain import ParserConfig, parse_hl7_message
from shared.events import LabResultRecorded, deterministic_id


def _lab(config: ParserConfig, message: str, **kwargs: object) -> LabResultRecorded:
    (event,) = parsed(parse_hl7_message(message, config, origin="lab.hl7:1", **kwargs)).events  # type: ignore[arg-type]
    assert isinstance(event, LabResultRecorded)
    return event


def test_every_field_of_a_result_event(config: ParserConfig) -> None:
    result = parsed(parse_hl7_message(oru(obx("3", "751-8", "0.8", "10*3/uL", "1.5-8.0")), config, origin="f:7"))
    assert (result.source, result.key, result.non_production) == ("f:7", "HL7:NIHCC-LAB:CTRL-1", False)
    (event,) = result.events
    assert event.model_dump() == {
        "event_id": deterministic_id("HL7:NIHCC-LAB:CTRL-1", "HL7:NIHCC-LAB:CTRL-1:3", "1"),
        "kind": "lab.result",
        "schema_version": 1,
        "study_id": "ANAKINRA-AD",
        "subject_id": "AD-001",
        "occurred_at": datetime(2026, 3, 2, 8, 0, tzinfo=UTC),
        "recorded_at": datetime(2026, 3, 2, 8, 15, tzinfo=UTC),
        "source": "HL7:NIHCC-LAB:CTRL-1:3",
        "dedup_key": "HL7:NIHCC-LAB:CTRL-1",
        "correlation_id": "HL7:NIHCC-LAB:CTRL-1",
        "causation_id": None,
        "test": "NEUT",
        "loinc": "751-8",
        "value": Decimal("0.8"),
        "comparator": None,
        "unit": "10*9/L",
        "original_value": "0.8",
        "original_unit": "10*3/uL",
        "ref_low": Decimal("1.5"),
        "ref_high": Decimal("8.0"),
        "status": "final",
        "specimen_id": "HL7:NIHCC-LAB:FO-1",
        "result_key": "HL7:NIHCC-LAB:FO-1:NEUT",
        "derived": False,
        "data_issue": None,
        "age_at_collection": 14,  # PID-7 2011-07-04, collected 2026-03-02: 14 completed years
        "age_unit": "YEARS",
    }


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("F", "final"),
        ("U", "final"),
        ("C", "corrected"),
        ("P", "preliminary"),
        ("R", "preliminary"),
        ("I", "preliminary"),
        ("S", "preliminary"),
        ("D", "deleted"),
        ("W", "deleted"),
    ],
)
def test_obx11_status_table_0085(config: ParserConfig, code: str, status: str) -> None:
    event = _lab(config, oru(obx("1", "777-3", "40", status=code)))
    assert (event.status, event.value, event.data_issue) == (status, Decimal("40"), None)


@pytest.mark.parametrize("code", ["X", "N", "O"])
def test_cancelled_results_carry_no_value(config: ParserConfig, code: str) -> None:
    event = _lab(config, oru(obx("1", "777-3", "40", ref="150-450", status=code)))
    assert (event.status, event.value, event.unit, event.ref_low, event.data_issue) == (
        "cancelled",
        None,
        None,
        None,
        None,
    )


def test_unknown_status_is_preliminary_with_a_data_issue(config: ParserConfig) -> None:
    event = _lab(config, oru(obx("1", "777-3", "40", status="Q")))
    assert (event.status, event.data_issue) == ("preliminary", "OBX-11 status 'Q' is not in HL7 table 0085")


def test_empty_status_takes_obr25_else_final(config: ParserConfig) -> None:
    message = oru(obx("1", "777-3", "40", status=""))
    assert _lab(config, message).status == "final"
    with_obr25 = message.replace("|||20260302080000", "|||20260302080000" + "|" * 18 + "P")
    assert _lab(config, with_obr25).status == "preliminary"


@pytest.mark.parametrize(
    ("value_type", "value", "expected"),
    [
        ("SN", "<^0.1", (Decimal("0.1"), "<", None)),
        ("SN", ">^5", (Decimal("5"), ">", None)),
        ("SN", "^1^-^5", (None, None, "SN value '^1^-^5' is a range, not a single result")),
        ("SN", "^1^:^2", (None, None, "SN value '^1^:^2' is a ratio, not a single result")),
        ("ST", "0.4", (Decimal("0.4"), None, None)),
        ("ST", "<0.5", (Decimal("0.5"), "<", None)),
        ("ST", "clumped", (None, None, "value 'clumped' is not numeric")),
        ("NM", "abc", (None, None, "value 'abc' is not numeric")),
        ("NM", "", (None, None, "value missing for a final result")),
    ],
)
def test_value_types(config: ParserConfig, value_type: str, value: str, expected: tuple[object, ...]) -> None:
    event = _lab(config, oru(obx("1", "751-8", value, value_type=value_type)))
    assert (event.value, event.comparator, event.data_issue) == expected
    assert event.original_value == value


def test_missing_value_of_a_preliminary_result_is_no_issue(config: ParserConfig) -> None:
    assert _lab(config, oru(obx("1", "751-8", "", status="P"))).data_issue is None


def test_unknown_loinc_is_accepted_and_yields_nothing(config: ParserConfig) -> None:
    result = parsed(parse_hl7_message(oru(obx("1", "4544-3", "39.1", "%")), config, origin="f:1"))
    assert result.events == []


def test_local_code_with_loinc_alternate_is_recognised(config: ParserConfig) -> None:
    message = oru("OBX|1|NM|ANC^Abs neut^L^751-8^Neutrophils^LN||1.1|10*3/uL||||F")
    assert _lab(config, message).test == "NEUT"


def test_escaped_component_separator_in_unit(config: ParserConfig) -> None:
    assert _lab(config, oru(obx("1", "751-8", "1.1", "10\\S\\9/L"))).unit == "10*9/L"


def test_coded_unit_uses_its_identifier(config: ParserConfig) -> None:
    event = _lab(config, oru(obx("1", "718-7", "13.4", "g/dL^grams per deciliter^UCUM")))
    assert (event.value, event.original_unit) == (Decimal("134.0"), "g/dL")


def test_subject_from_the_study_repetition_of_pid3(config: ParserConfig) -> None:
    event = _lab(config, oru(obx("1", "751-8", "1"), pid3="MRN77^^^HOSP^MR~AD-009^^^ANAKINRA-AD^SUBJ"))
    assert (event.subject_id, event.study_id) == ("AD-009", "ANAKINRA-AD")


def test_subject_from_first_repetition_in_the_default_study(config: ParserConfig) -> None:
    event = _lab(config, oru(obx("1", "751-8", "1"), pid3="AD-010^^^SITE^PI~X^^^HOSP^MR"))
    assert (event.subject_id, event.study_id) == ("AD-010", "ANAKINRA-AD")


def test_pid3_assigned_by_another_configured_study(config: ParserConfig) -> None:
    event = _lab(config, oru(obx("1", "751-8", "1"), pid3="MRN1^^^HOSP~OS-1^^^OTHER-STUDY"))
    assert (event.subject_id, event.study_id) == ("OS-1", "OTHER-STUDY")


def test_collection_time_falls_back_to_obx14_then_msh7(config: ParserConfig) -> None:
    with_obx14 = oru(obx("1", "751-8", "1", observed="20260302070000-0100"), collected="")
    assert _lab(config, with_obx14).occurred_at == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    only_msh7 = oru(obx("1", "751-8", "1"), collected="")
    assert _lab(config, only_msh7).occurred_at == datetime(2026, 3, 2, 8, 15, tzinfo=UTC)


def test_ingestion_time_is_msh7_else_the_callers_else_the_event_time(config: ParserConfig) -> None:
    wall_clock = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
    assert _lab(config, oru(obx("1", "751-8", "1")), received_at=wall_clock).recorded_at == datetime(
        2026, 3, 2, 8, 15, tzinfo=UTC
    )
    no_msh7 = oru(obx("1", "751-8", "1"), sent="")
    assert _lab(config, no_msh7, received_at=wall_clock).recorded_at == wall_clock
    assert _lab(config, no_msh7).recorded_at == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_each_obr_is_a_specimen_and_ids_stay_unique(config: ParserConfig) -> None:
    message = oru(obx("1", "751-8", "1.1")) + "OBR|2|PL-2|FO-2^LIS|24325-3^LFT^LN|||20260302090000\r"
    message += obx("1", "1742-6", "250", "U/L", "5-40") + "\r"
    events = parsed(parse_hl7_message(message, config, origin="f:1")).events
    assert [e.model_dump()["specimen_id"] for e in events] == ["HL7:NIHCC-LAB:FO-1", "HL7:NIHCC-LAB:FO-2"]
    assert [e.model_dump()["result_key"] for e in events] == ["HL7:NIHCC-LAB:FO-1:NEUT", "HL7:NIHCC-LAB:FO-2:ALT"]
    assert [e.occurred_at.hour for e in events] == [8, 9]
    assert len({e.event_id for e in events}) == 2


def test_empty_obx1_uses_the_position_in_the_message(config: ParserConfig) -> None:
    events = parsed(parse_hl7_message(oru(obx("", "751-8", "1"), obx("", "777-3", "99")), config, origin="f")).events
    assert [e.source for e in events] == ["HL7:NIHCC-LAB:CTRL-1:1", "HL7:NIHCC-LAB:CTRL-1:2"]


@pytest.mark.parametrize("processing", ["T", "D", "T^A"])
def test_test_and_debug_messages_are_accepted_but_never_graded(config: ParserConfig, processing: str) -> None:
    result = parsed(parse_hl7_message(oru(obx("1", "751-8", "0.2"), processing=processing), config, origin="f:1"))
    assert (result.events, result.non_production, result.key) == ([], True, "HL7:NIHCC-LAB:CTRL-1")


def test_resent_control_id_is_the_same_record_whatever_its_content(config: ParserConfig) -> None:
    first = parsed(parse_hl7_message(oru(obx("1", "751-8", "1.1")), config, origin="a:1"))
    again = parsed(parse_hl7_message(oru(obx("1", "751-8", "0.3")), config, origin="b:9"))
    other = parsed(parse_hl7_message(oru(obx("1", "751-8", "1.1"), control="CTRL-2"), config, origin="a:1"))
    assert first.key == again.key == "HL7:NIHCC-LAB:CTRL-1"
    assert first.events[0].event_id == again.events[0].event_id
    assert other.key == "HL7:NIHCC-LAB:CTRL-2"
    assert other.events[0].event_id != first.events[0].event_id


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (
            oru(obx("1", "751-8", "1"), message_type="ADT^A01"),
            "HL7 message NIHCC-LAB:CTRL-1: MSH-9: message type 'ADT^A01' is not ORU^R01",
        ),
        (oru(obx("1", "751-8", "1"), control=""), "HL7 message at in:4: MSH-10: message control id is missing"),
        (
            oru(obx("1", "751-8", "1"), pid3=""),
            "HL7 message NIHCC-LAB:CTRL-1: PID-3: patient identifier list is missing or empty",
        ),
        (
            oru(obx("1", "751-8", "1"), sent="2026-03-02"),
            "HL7 message at in:4: MSH-7: '2026-03-02' is not an HL7 date/time (YYYYMMDD[HHMM[SS]][+/-ZZZZ])",
        ),
        (
            oru(obx("1", "751-8", "1"), collected="yesterday"),
            "HL7 message NIHCC-LAB:CTRL-1: OBR-7: 'yesterday' is not an HL7 date/time (YYYYMMDD[HHMM[SS]][+/-ZZZZ])",
        ),
        (
            oru(obx("1", "751-8", "1"), collected="", sent=""),
            "HL7 message NIHCC-LAB:CTRL-1: OBR-7: no collection time: OBR-7, OBX-14 and MSH-7 are all empty",
        ),
        (
            "PID|1||AD-1\rOBX|1|NM|751-8^^LN||1\r",
            "HL7 message at in:4: MSH: the message does not start with a readable MSH segment",
        ),
    ],
)
def test_rejections_name_record_field_and_reason(config: ParserConfig, message: str, error: str) -> None:
    assert rejected(parse_hl7_message(message, config, origin="in:4")).error == error


def test_message_without_pid_is_rejected(config: ParserConfig) -> None:
    message = "MSH|^~\\&|LIS|LAB|TW|X|20260302||ORU^R01|C9|P|2.5.1\rOBR|1||F1|X|||20260302\r"
    found = rejected(parse_hl7_message(message, config, origin="in:1"))
    assert found.error == "HL7 message LAB:C9: PID-3: the message has no PID segment"


def test_results_before_any_pid_are_rejected(config: ParserConfig) -> None:
    message = "MSH|^~\\&|LIS|LAB|TW|X|20260302||ORU^R01|C9|P|2.5.1\r" + obx("1", "751-8", "1") + "\rPID|1||AD-1\r"
    found = rejected(parse_hl7_message(message, config, origin="in:1"))
    assert found.error == "HL7 message LAB:C9: PID-3: no PID segment precedes the results"


@pytest.mark.parametrize("terminator", ["\r", "\n", "\r\n"])
def test_any_segment_terminator_and_mllp_framing(config: ParserConfig, terminator: str) -> None:
    text = oru(obx("1", "751-8", "0.9"), obx("2", "777-3", "30"), terminator=terminator)
    for message in (text, f"\x0b{text}\x1c\r", text.encode("utf-8")):
        events = parsed(parse_hl7_message(message, config, origin="f:1")).events
        assert [e.source for e in events] == ["HL7:NIHCC-LAB:CTRL-1:1", "HL7:NIHCC-LAB:CTRL-1:2"]


def test_latin1_message_is_read(config: ParserConfig) -> None:
    message = oru(obx("1", "1975-2", "20", "µmol/L")).replace("Doe^Jane", "Müller^Jürgen").encode("latin-1")
    event = _lab(config, message)  # type: ignore[arg-type]
    assert (event.value, event.unit) == (Decimal("20"), "umol/L")
