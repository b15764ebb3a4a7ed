"""Units (what one parser call reads, and its position) and batches (the rows of one transaction)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from ingest_service.builders import STUDY, oru, parser_config
from services.ingest.batch import Accepted, Arrival, Envelope, Refused, build_batch, event_json
from services.ingest.domain import Parsed
from services.ingest.handlers import parse_units
from services.ingest.units import fhir_units, hl7_units, ndjson_units
from shared.events import RecordIngested

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ARRIVAL = Arrival("http", "hl7v2", NOW, STUDY)


def test_hl7_units_start_at_msh_lines_whatever_the_terminators() -> None:
    data = b"\x0bFHS|^~\\&\r\n" + oru("C-1").replace(b"\r", b"\n") + b"\x1c\r" + oru("C-2").replace(b"\r", b"\r\n")
    units = list(hl7_units(data, "f.hl7"))
    assert [unit.origin for unit in units] == ["f.hl7:2", "f.hl7:7"]  # as `replay` counts
    assert units[0].data == oru("C-1") + b"\r"  # the blank line left by the end block belongs to it
    assert units[1].data == oru("C-2")


def test_text_before_the_first_msh_is_a_unit_of_its_own() -> None:
    units = list(hl7_units(b"garbage\r" + oru("C-1"), "f"))
    assert [(unit.origin, unit.data[:3]) for unit in units] == [("f:1", b"gar"), ("f:2", b"MSH")]


def test_ndjson_units_skip_blank_lines_and_keep_line_numbers() -> None:
    units = list(ndjson_units(b'{"a": 1}\r\n\n  \n{"b": 2}', "r"))
    assert [(unit.origin, unit.data) for unit in units] == [("r:1", b'{"a": 1}'), ("r:4", b'{"b": 2}')]


def test_fhir_is_one_document_unless_the_first_of_several_lines_is_an_object() -> None:
    pretty = b'\n{\n  "resourceType": "Bundle"\n}\n'
    [document] = fhir_units(pretty, "b")
    assert (document.origin, document.entry_origin) == ("b:2", "b:")
    lines = list(fhir_units(b'{"resourceType": "Observation"}\n{"resourceType": "AdverseEvent"}\n', "n"))
    assert [unit.origin for unit in lines] == ["n:1", "n:2"]


def batch_of(*messages: bytes, seen: set[str] | None = None):  # type: ignore[no-untyped-def]
    units = [unit for index, m in enumerate(messages) for unit in hl7_units(m, f"m{index}")]
    return build_batch(parse_units(units, "hl7v2", parser_config(), NOW), ARRIVAL, set() if seen is None else seen)


def test_an_accepted_record_yields_one_record_ingested_keyed_by_study_with_its_events() -> None:
    batch, outcomes = batch_of(oru("C-1"))
    assert outcomes == [Accepted("m0:1", "HL7:NIHCC-LAB:C-1")]
    [row] = batch.records
    assert row.message is not None
    record = RecordIngested.model_validate_json(row.message)
    assert (record.study_id, record.channel, record.received_at, record.dedup_key) == (STUDY, "http", NOW, row.key)
    assert orjson.loads(row.message) == orjson.loads(record.model_dump_json())
    assert [event.event_id for event in row.events] == [event.event_id for event in record.events]
    assert all(orjson.loads(event.payload)["event_id"] == event.event_id for event in row.events)


def test_a_record_repeated_in_one_transaction_is_one_row_and_a_duplicate() -> None:
    seen: set[str] = set()
    batch, outcomes = batch_of(oru("C-1"), oru("C-1", value="0.4"), seen=seen)
    assert [row.key for row in batch.records] == ["HL7:NIHCC-LAB:C-1"]
    assert outcomes[1] == Accepted("m1:1", "HL7:NIHCC-LAB:C-1", duplicate=True)
    assert seen == {"HL7:NIHCC-LAB:C-1"}


def test_test_mode_messages_are_kept_but_not_published() -> None:
    batch, outcomes = batch_of(oru("C-1", processing="T"))
    assert isinstance(outcomes[0], Accepted)
    assert batch.records[0].non_production
    assert (batch.records[0].message, batch.records[0].events) == (None, ())


def test_rejected_records_are_quarantined_with_their_reason_and_no_identifiers() -> None:
    batch, outcomes = batch_of(oru("C-1", pid3=""))
    [refused] = outcomes
    assert isinstance(refused, Refused)
    [row] = batch.quarantine
    assert (row.source, row.error) == (refused.source, refused.error)
    assert "PID-3" in row.error
    assert row.raw is not None and "Doe" not in row.raw and "19800704" not in row.raw
    assert len(row.sha256) == 64


def test_a_value_postgresql_cannot_store_rejects_only_that_record() -> None:
    record = {
        "DOMAIN": "AE",
        "STUDYID": STUDY,
        "USUBJID": "AD-001",
        "RECID": "AE-1",
        "AETERM": "rash\u0000",
        "AESTDTC": "2026-03-01",
    }
    units = list(ndjson_units(orjson.dumps(record), "r"))
    batch, outcomes = build_batch(parse_units(units, "records", parser_config(), NOW), ARRIVAL, set())
    assert isinstance(outcomes[0], Refused)
    assert "NUL" in outcomes[0].error
    assert batch.records == []


def test_a_nul_in_a_message_control_id_rejects_that_message_not_the_batch() -> None:
    batch, outcomes = batch_of(oru("C-\x00"), oru("C-2"))
    assert isinstance(outcomes[0], Refused) and "NUL" in outcomes[0].error
    assert [row.key for row in batch.records] == ["HL7:NIHCC-LAB:C-2"]
    assert "\x00" not in batch.quarantine[0].error


def test_the_outbox_message_is_exactly_pydantics_dump_of_the_record_whatever_its_strings() -> None:
    """The envelope is cut from pydantic's own dump once per batch: the escaping must stay pydantic's."""
    [(_, [parsed])] = parse_units(list(hl7_units(oru("C-1"), "m")), "hl7v2", parser_config(), NOW)
    assert isinstance(parsed, Parsed)
    envelope = Envelope(Arrival("mllp", "hl7v2", NOW, STUDY))
    for key in ('HL7:LAB:"quoted"\\back', "HL7:LAB:Zürich\u2028\t\x1f", "HL7:LAB:\U0001f9ea"):
        events = [event_json(event) for event in parsed.events]
        expected = RecordIngested(
            record_id="id-1", dedup_key=key, study_id=STUDY, received_at=NOW, channel="mllp", events=parsed.events
        ).model_dump_json()
        assert envelope.message("id-1", key, STUDY, events) == expected
