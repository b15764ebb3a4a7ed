"""TrialWatch records, every DOMAIN (INTERFACES §1.3, §2; SAFETY_RULES §6 "Duplicates")."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from ingest_builders import parsed, record, rejected

from services.ingest.domain import ParserConfig, parse_record_line
from services.ingest.domain.keys import content_hash
from shared.events import deterministic_id

ENVELOPE = {"schema_version", "study_id", "subject_id", "occurred_at", "recorded_at", "causation_id"}


def _parse(config: ParserConfig, data: dict[str, Any], **kwargs: Any) -> Any:
    return parse_record_line(orjson.dumps(data), config, origin="r.ndjson:3", **kwargs)


def _event(config: ParserConfig, data: dict[str, Any]) -> dict[str, Any]:
    (event,) = parsed(_parse(config, data)).events
    return event.model_dump()


def test_envelope_of_a_record_event(config: ParserConfig) -> None:
    data = record("DS", DSDECOD="ENROLLED", DSSTDTC="2026-01-02")
    result = parsed(_parse(config, data))
    key = f"REC:ANAKINRA-AD:DS:DS-1:{content_hash(data)}"
    assert (result.source, result.key, result.raw_redacted) == ("r.ndjson:3", key, data)
    assert _event(config, data) == {
        "event_id": deterministic_id(key, "REC:ANAKINRA-AD:DS:DS-1", "1"),
        "kind": "disposition",
        "schema_version": 1,
        "study_id": "ANAKINRA-AD",
        "subject_id": "AD-004",
        "occurred_at": datetime(2026, 1, 2, tzinfo=UTC),
        "recorded_at": datetime(2026, 1, 2, tzinfo=UTC),
        "source": "REC:ANAKINRA-AD:DS:DS-1",
        "dedup_key": key,
        "correlation_id": key,
        "causation_id": None,
        "decision": "ENROLLED",
    }


def _family(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k not in ENVELOPE | {"event_id", "dedup_key", "correlation_id"}}


def test_adverse_event_record(config: ParserConfig) -> None:
    data = record(
        "AE", AETERM="chest infection", AEDECOD="Lung infection", AELLTCD=10061229, AEPTCD="10061229",
        AESOC="Infections and infestations", AESOCCD="10021881", AETOXGR="3", AESER="Y", AESHOSP="Y", AESDTH="N",
        AEREL="POSSIBLY RELATED", AEOUT="RECOVERING/RESOLVING", AESTDTC="2026-03-12T10:00",
        AEENDTC="2026-03-20", RECEIVEDDTC="2026-03-13T09:12:00+02:00",
    )  # fmt: skip
    event = _event(config, data)
    assert event["recorded_at"] == datetime(2026, 3, 13, 7, 12, tzinfo=UTC)
    assert _family(event) == {
        "kind": "adverse.event",
        "source": "REC:ANAKINRA-AD:AE:AE-1",
        "ae_id": "AE-1",
        "term": "chest infection",
        "decod": "Lung infection",
        "meddra_code": "10061229",
        "soc": "Infections and infestations",
        "soc_code": "10021881",
        "grade": 3,
        "criteria": {"AESER": True, "AESDTH": False, "AESHOSP": True},
        "causality": "POSSIBLY RELATED",
        "outcome": "RECOVERING/RESOLVING",
        "ended_at": datetime(2026, 3, 20, tzinfo=UTC),
    }


def test_lab_record(config: ParserConfig) -> None:
    data = record(
        "LB", LBTESTCD="NEUT", LBLOINC="751-8", LBORRES="800", LBORRESU="cells/uL", LBORNRLO="1500",
        LBORNRHI=8000, LBDTC="2026-03-10T08:15:00", LBREFID="SPC-7", LBSTAT="C",
    )  # fmt: skip
    assert _family(_event(config, data)) == {
        "kind": "lab.result",
        "source": "REC:ANAKINRA-AD:LB:LB-1",
        "test": "NEUT",
        "loinc": "751-8",
        "value": Decimal("0.8"),
        "comparator": None,
        "unit": "10*9/L",
        "original_value": "800",
        "original_unit": "cells/uL",
        "ref_low": Decimal("1.5"),
        "ref_high": Decimal("8"),
        "status": "corrected",
        "specimen_id": "LB:ANAKINRA-AD:AD-004:SPC-7",
        "result_key": "LB:ANAKINRA-AD:AD-004:SPC-7:NEUT",
        "derived": False,
        "data_issue": None,
        "age_at_collection": None,  # no date of birth in this format
        "age_unit": None,
    }


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"LBSTAT": None}, {"status": "final"}),
        ({"LBSTAT": "D"}, {"status": "deleted"}),
        ({"LBSTAT": "W"}, {"status": "deleted"}),
        ({"LBSTAT": "P"}, {"status": "preliminary"}),
        (
            {"LBREFID": None},
            {"specimen_id": "LB:ANAKINRA-AD:AD-004:2026-03-10", "result_key": "REC:ANAKINRA-AD:LB:LB-1"},
        ),
        ({"LBTESTCD": "PLT", "LBLOINC": "777-3"}, {"test": "PLAT"}),
        ({"LBORRES": "<0.5"}, {"value": Decimal("0.5"), "comparator": "<"}),
        ({"LBORRES": 0.4}, {"value": Decimal("0.4"), "original_value": "0.4"}),
        ({"LBORRES": "see note"}, {"value": None, "data_issue": "value 'see note' is not numeric"}),
        ({"LBORRES": None}, {"value": None, "data_issue": "value missing for a final result"}),
        (
            {"LBORRESU": "mmol/L"},
            {"value": None, "unit": None, "data_issue": "unit 'mmol/L' is not a known unit of NEUT"},
        ),
        ({"LBORNRLO": "n/a"}, {"ref_low": None, "ref_high": Decimal("8.0")}),
    ],
)
def test_lab_record_variants(config: ParserConfig, keys: dict[str, Any], expected: dict[str, Any]) -> None:
    base = {"LBTESTCD": "NEUT", "LBORRES": "1.2", "LBORRESU": "10^9/L", "LBORNRLO": "1.5", "LBORNRHI": "8.0",
            "LBDTC": "2026-03-10", "LBREFID": "SPC-7"}  # fmt: skip
    event = _event(config, record("LB", **(base | keys)))
    assert {key: event[key] for key in expected} == expected


def test_lab_record_of_another_test_is_accepted_and_ignored(config: ParserConfig) -> None:
    data = record("LB", LBTESTCD="CRP", LBORRES="12", LBORRESU="mg/L", LBDTC="2026-03-10")
    assert parsed(_parse(config, data)).events == []


def test_vital_sign_record(config: ParserConfig) -> None:
    data = record("VS", VSTESTCD="TEMP", VSORRES="101.3", VSORRESU="F", VSDTC="2026-03-05T07:30:00")
    assert _family(_event(config, data)) == {
        "kind": "vital.sign",
        "source": "REC:ANAKINRA-AD:VS:VS-1",
        "test": "TEMP",
        "value": Decimal("38.5"),
        "unit": "Cel",
        "original_value": "101.3",
        "original_unit": "F",
        "status": "final",
        "result_key": "REC:ANAKINRA-AD:VS:VS-1",
        "data_issue": None,
        "age_at_collection": None,  # no date of birth in this format
        "age_unit": None,
    }
    other = record("VS", VSTESTCD="SYSBP", VSORRES="120", VSDTC="2026-03-05")
    assert parsed(_parse(config, other)).events == []


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            record("EX", EXOCCUR="N", EXDOSE="0", EXDOSU="mg", EXSTDTC="2026-03-04T08:00:00"),
            {"kind": "dose", "given": False, "dose": Decimal("0"), "dose_unit": "mg"},
        ),
        (
            record("EX", EXOCCUR="Y", EXDOSE=135, EXSTDTC="2026-03-03"),
            {"kind": "dose", "given": True, "dose": Decimal("135"), "dose_unit": None},
        ),
        (
            record(
                "ISR",
                ISRDTC="2026-03-03T20:00",
                ISRLOC="THIGH",
                ISRTEND="N",
                ISRERYTH="Y",
                ISRWARM="Y",
                ISRITCH="N",
                ISRPAIN="Y",
                ISREDEMA="N",
                ISRLIPO="N",
                ISRULCER="Y",
                ISRNECR="N",
                ISRERYMM=25,
                ISRTOXGR="3",
            ),
            {
                "kind": "injection.site",
                "location": "THIGH",
                "erythema_mm": Decimal("25"),
                "grade": 3,
                "findings": {
                    "TEND": False,
                    "ERYTH": True,
                    "WARM": True,
                    "ITCH": False,
                    "PAIN": True,
                    "EDEMA": False,
                    "LIPO": False,
                    "ULCER": True,
                    "NECR": False,
                },
            },
        ),
        (
            record("DS", DSDECOD="WITHDRAWN", DSSTDTC="2026-04-01"),
            {"kind": "disposition", "decision": "WITHDRAWN"},
        ),
        (
            record("DSMB", USUBJID=None, DSMBDEC="RESUME", DSMBDTC="2026-04-02", DSMBRULE="H-NEUT"),
            {"kind": "dsmb.decision", "subject_id": None, "decision": "RESUME", "rule_id": "H-NEUT"},
        ),
        (
            record("DSMB", DSMBDEC="TERMINATE", DSMBDTC="2026-04-02"),
            {"kind": "dsmb.decision", "subject_id": None, "decision": "TERMINATE", "rule_id": None},
        ),
        (
            record("REG", REGCLOCK="IND-7D", REGAEREF="ae-1", REGDTC="2026-03-20T15:00:00Z"),
            {
                "kind": "regulatory.submission",
                "clock": "IND-7D",
                "ae_ref": "ae-1",
                "submitted_at": datetime(2026, 3, 20, 15, tzinfo=UTC),
                "occurred_at": datetime(2026, 3, 20, 15, tzinfo=UTC),
            },
        ),
    ],
)
def test_other_domains(config: ParserConfig, data: dict[str, Any], expected: dict[str, Any]) -> None:
    event = _event(config, data)
    assert {key: event[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (
            record("XX"),
            "XX record XX-1: DOMAIN: unknown DOMAIN 'XX' (expected one of AE, LB, VS, EX, ISR, DS, DSMB, REG)",
        ),
        ({"STUDYID": "ANAKINRA-AD", "RECID": "1"}, "record at r.ndjson:3: DOMAIN: missing required key"),
        (
            record("DS", STUDYID="NOPE", DSDECOD="ENROLLED", DSSTDTC="2026-01-02"),
            "DS record DS-1: STUDYID: 'NOPE' is not a configured study",
        ),
        (
            record("DS", RECID=None, DSDECOD="ENROLLED", DSSTDTC="2026-01-02"),
            "record at r.ndjson:3: RECID: missing required key",
        ),
        (
            record("DS", USUBJID=None, DSDECOD="ENROLLED", DSSTDTC="2026-01-02"),
            "DS record DS-1: USUBJID: missing required key",
        ),
        (
            record("DS", USUBJID=4, DSDECOD="ENROLLED", DSSTDTC="2026-01-02"),
            "DS record DS-1: USUBJID: expected a string, got a JSON number",
        ),
        (record("AE", AESTDTC="2026-03-12"), "AE record AE-1: AETERM: missing required key"),
        (record("AE", AETERM="rash"), "AE record AE-1: AESTDTC: missing required key"),
        (
            record("AE", AETERM="rash", AESTDTC="12/03/2026"),
            "AE record AE-1: AESTDTC: '12/03/2026' is not an ISO 8601 date or date-time",
        ),
        (
            record("AE", AETERM="rash", AESTDTC="2026-03-12", AESER=True),
            "AE record AE-1: AESER: expected a string, got a JSON boolean",
        ),
        (
            record("AE", AETERM="rash", AESTDTC="2026-03-12", AESER="yes"),
            "AE record AE-1: AESER: 'yes' is not a Y/N flag",
        ),
        (
            record("AE", AETERM="rash", AESTDTC="2026-03-12", AETOXGR="Grade 3"),
            "AE record AE-1: AETOXGR: 'Grade 3' is not a grade 1-5",
        ),
        (
            record("AE", AETERM=["rash"], AESTDTC="2026-03-12"),
            "AE record AE-1: AETERM: expected a string, got a JSON array",
        ),
        (
            record("LB", LBORRES="1", LBDTC="2026-03-10"),
            "LB record LB-1: LBTESTCD: missing required key (nor is LBLOINC given)",
        ),
        (record("LB", LBTESTCD="NEUT", LBORRES="1"), "LB record LB-1: LBDTC: missing required key"),
        (
            record("LB", LBTESTCD="NEUT", LBDTC="2026-03-10", LBSTAT="Q"),
            "LB record LB-1: LBSTAT: 'Q' is not a result status (F, C, P, D, W)",
        ),
        (
            record("LB", LBTESTCD="NEUT", LBDTC="2026-03-10", LBORNRLO={"v": 1}),
            "LB record LB-1: LBORNRLO: expected a number, got {'v': 1}",
        ),
        (record("EX", EXSTDTC="2026-03-03"), "EX record EX-1: EXOCCUR: missing required key"),
        (
            record("EX", EXOCCUR="Y", EXDOSE="lots", EXSTDTC="2026-03-03"),
            "EX record EX-1: EXDOSE: expected a number, got 'lots'",
        ),
        (
            record("DS", DSDECOD="SCREENED", DSSTDTC="2026-01-02"),
            "DS record DS-1: DSDECOD: 'SCREENED' is not one of ENROLLED, WITHDRAWN, COMPLETED",
        ),
        (
            record("DSMB", DSMBDEC="PAUSE", DSMBDTC="2026-04-02"),
            "DSMB record DSMB-1: DSMBDEC: 'PAUSE' is not one of RESUME, CONTINUE_PAUSE, TERMINATE",
        ),
        (
            record("REG", REGCLOCK="IND-30D", REGAEREF="AE-1", REGDTC="2026-03-20"),
            "REG record REG-1: REGCLOCK: 'IND-30D' is not one of SPONSOR-24H, IND-7D, IND-15D",
        ),
        (record("REG", REGCLOCK="IND-7D", REGDTC="2026-03-20"), "REG record REG-1: REGAEREF: missing required key"),
        (record("ISR", ISRDTC="2026-03-03", ISRTOXGR="6"), "ISR record ISR-1: ISRTOXGR: '6' is not a grade 1-5"),
        (record("VS", VSTESTCD="TEMP", VSORRES="37"), "VS record VS-1: VSDTC: missing required key"),
        (
            record("DS", DSDECOD="ENROLLED", DSSTDTC="2026-01-02", RECEIVEDDTC="soon"),
            "DS record DS-1: RECEIVEDDTC: 'soon' is not an ISO 8601 date or date-time",
        ),
    ],
)
def test_rejections_name_record_field_and_reason(config: ParserConfig, data: dict[str, Any], error: str) -> None:
    found = rejected(_parse(config, data))
    assert (found.source, found.error, found.raw_redacted) == ("r.ndjson:3", error, data)


@pytest.mark.parametrize(
    ("line", "error"),
    [(b"[1, 2]", "the line is a JSON array, not an object"), (b'"x"', "the line is a JSON string, not an object")],
)
def test_non_object_lines_are_rejected(config: ParserConfig, line: bytes, error: str) -> None:
    assert rejected(parse_record_line(line, config, origin="r:1")).error == f"record at r:1: {error}"


def test_unparseable_line_keeps_only_a_digest(config: ParserConfig) -> None:
    found = rejected(parse_record_line(b'{"DOMAIN": "AE", "AETERM": ', config, origin="r:9"))
    assert found.error.startswith("record at r:9: JSON: not valid JSON (")
    assert found.raw_redacted is not None and set(found.raw_redacted) == {"unparseable", "sha256", "length"}


def test_integer_recid_is_read_as_text(config: ParserConfig) -> None:
    assert (
        _event(config, record("DS", RECID=17, DSDECOD="ENROLLED", DSSTDTC="2026-01-02"))["source"]
        == "REC:ANAKINRA-AD:DS:17"
    )


def test_dedup_keys(config: ParserConfig) -> None:
    data = record("AE", AETERM="rash", AESTDTC="2026-03-12", RECEIVEDDTC="2026-03-13T00:00:00Z")
    first = parsed(_parse(config, data))
    resent = parsed(
        _parse(config, {"RECEIVEDDTC": "2026-03-15T00:00:00Z", **{k: v for k, v in data.items() if k != "RECEIVEDDTC"}})
    )
    reordered = parsed(_parse(config, dict(reversed(list(data.items())))))
    updated = parsed(_parse(config, data | {"AETOXGR": "2"}))
    assert first.key == resent.key == reordered.key
    assert first.key.startswith("REC:ANAKINRA-AD:AE:AE-1:")
    assert first.events[0].event_id == resent.events[0].event_id
    assert updated.key != first.key and updated.key.startswith("REC:ANAKINRA-AD:AE:AE-1:")
    assert updated.events[0].event_id != first.events[0].event_id
    assert updated.events[0].source == first.events[0].source == "REC:ANAKINRA-AD:AE:AE-1"


def test_ingestion_time_is_receiveddtc_else_the_callers_else_the_event_time(config: ParserConfig) -> None:
    data = record("DS", DSDECOD="ENROLLED", DSSTDTC="2026-01-02")
    wall = datetime(2026, 5, 1, tzinfo=UTC)
    assert parsed(_parse(config, data, received_at=wall)).events[0].recorded_at == wall
    assert parsed(_parse(config, data)).events[0].recorded_at == datetime(2026, 1, 2, tzinfo=UTC)
    stamped = data | {"RECEIVEDDTC": "2026-01-03"}
    assert parsed(_parse(config, stamped, received_at=wall)).events[0].recorded_at == datetime(2026, 1, 3, tzinfo=UTC)
