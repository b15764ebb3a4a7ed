"""Fuzzing: whatever arrives, parsing ends in clean Parsed/Rejected results and valid events (INTERFACES §2)."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_builders import adverse_event, make_config, observation, obx, oru

from services.ingest.domain import (
    Parsed,
    ParseResult,
    Rejected,
    parse_fhir_document,
    parse_hl7_message,
    parse_record_line,
    parse_stream,
)

CONFIG = make_config()
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ER7_ALPHABET = "|^~\\&\r\n\x0b\x1c .-<>=:/+%*0123456789ADFLNMPRSTUXCWOabcdeg"
SEGMENT_IDS = ["MSH", "PID", "OBR", "OBX", "NTE", "NK1", "PV1", "ZZZ", "FHS", "BHS", ""]
ER7_SAMPLES = [
    "ORU^R01",
    "751-8^ANC^LN",
    "8310-5^^LN",
    "10^9/L",
    "g/dL",
    "<^0.1",
    "^1^-^5",
    "1.5-8.0",
    "20260302",
    "20260302081500+0100",
    "F",
    "C",
    "X",
    "T",
    "NM",
    "SN",
    "ST",
    "AD-1^^^ANAKINRA-AD",
]
FIELD_VALUES = st.one_of(st.text(ER7_ALPHABET, max_size=12), st.sampled_from(ER7_SAMPLES))
SEGMENTS = st.builds(
    lambda tag, fields: "|".join([tag, *fields]), st.sampled_from(SEGMENT_IDS), st.lists(FIELD_VALUES, max_size=20)
)
OBSERVATIONS = st.builds(
    obx,
    st.text(ER7_ALPHABET, max_size=3),
    st.sampled_from(["751-8", "718-7", "8310-5", "X"]),
    FIELD_VALUES,
    FIELD_VALUES,
    FIELD_VALUES,
)


def _damaged(observations: list[str], cut: int, insert: str) -> str:
    text = oru(*observations)
    return text[:cut] + insert + text[cut:]


MESSAGES = st.one_of(
    st.lists(SEGMENTS, max_size=8).map("\r".join),
    st.builds(_damaged, st.lists(OBSERVATIONS, max_size=4), st.integers(0, 400), st.text(ER7_ALPHABET, max_size=6)),
)


def _check(results: list[ParseResult]) -> None:
    for result in results:
        assert isinstance(result, Parsed | Rejected)
        if isinstance(result, Rejected):
            assert result.error and result.source
            continue
        for event in result.events:
            assert type(event).model_validate(event.model_dump()) == event


@FUZZ
@given(MESSAGES)
def test_hl7_messages(message: str) -> None:
    _check([parse_hl7_message(message, CONFIG, origin="fuzz:1")])


@FUZZ
@given(st.lists(MESSAGES, max_size=4), st.sampled_from(["\r", "\n", "\r\n"]), st.booleans())
def test_hl7_streams(messages: list[str], terminator: str, framed: bool) -> None:
    texts = [("MSH|" + message).replace("\r", terminator) for message in messages]
    data = "".join(f"\x0b{text}\x1c\r" if framed else text for text in texts).encode("utf-8", "surrogatepass")
    _check(list(parse_stream(data, CONFIG, name="fuzz")))


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes(data: bytes) -> None:
    _check(list(parse_stream(data, CONFIG, name="fuzz")))
    _check([parse_hl7_message(data, CONFIG, origin="fuzz:1")])
    _check([parse_record_line(data, CONFIG, origin="fuzz:1")])
    _check(parse_fhir_document(data, CONFIG, origin="fuzz:1"))


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=10)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
)
RECORD_KEYS = [
    "DOMAIN",
    "STUDYID",
    "USUBJID",
    "RECID",
    "RECEIVEDDTC",
    "AETERM",
    "AESTDTC",
    "AETOXGR",
    "AESER",
    "AELLTCD",
    "AEENDTC",
    "LBTESTCD",
    "LBLOINC",
    "LBORRES",
    "LBORRESU",
    "LBORNRLO",
    "LBORNRHI",
    "LBDTC",
    "LBREFID",
    "LBSTAT",
    "VSTESTCD",
    "VSORRES",
    "VSORRESU",
    "VSDTC",
    "EXOCCUR",
    "EXDOSE",
    "EXSTDTC",
    "ISRDTC",
    "ISRPAIN",
    "ISRERYMM",
    "ISRTOXGR",
    "DSDECOD",
    "DSSTDTC",
    "DSMBDEC",
    "DSMBDTC",
    "REGCLOCK",
    "REGAEREF",
    "REGDTC",
]
PLAUSIBLE = st.sampled_from(
    [
        *[
            "AE",
            "LB",
            "VS",
            "EX",
            "ISR",
            "DS",
            "DSMB",
            "REG",
            "ANAKINRA-AD",
            "AD-1",
            "Y",
            "N",
            "3",
            "NEUT",
            "TEMP",
            "F",
            "C",
            "D",
            "<0.5",
            "1.2",
            "10^9/L",
            "mg/dL",
        ],
        *["2026-03-02", "2026-03-02T08:00:00Z", "ENROLLED", "RESUME", "IND-7D"],
        135,
        0.5,
    ]
)
RECORDS = st.dictionaries(st.sampled_from(RECORD_KEYS), PLAUSIBLE | JSON, max_size=14)


@FUZZ
@given(RECORDS)
def test_records(data: dict[str, Any]) -> None:
    line = orjson.dumps(data)
    _check([parse_record_line(line, CONFIG, origin="fuzz:1")])
    _check(list(parse_stream(line + b"\n" + line, CONFIG, name="fuzz")))


FHIR_VALUES = st.sampled_from(
    [
        {"reference": "Patient/AD-1"},
        {"coding": [{"system": "http://loinc.org", "code": "751-8"}]},
        {"coding": [{"code": "serious"}]},
        {"value": 0.4, "unit": "10*9/L", "comparator": "<"},
        [{"low": {"value": 1}}],
        "final",
        "2026-03-02",
        "amended",
        [{"url": "x/StructureDefinition/ctcae-grade", "valueInteger": 3}],
        [{"causality": [{"assessment": {"text": "possible"}}]}],
        {"versionId": "1", "lastUpdated": "2026-03-02"},
    ]
)
FHIR_KEYS = [
    "id",
    "meta",
    "status",
    "code",
    "subject",
    "effectiveDateTime",
    "valueQuantity",
    "valueString",
    "referenceRange",
    "specimen",
    "event",
    "date",
    "seriousness",
    "severity",
    "outcome",
    "extension",
    "suspectEntity",
    "actuality",
    "entry",
]
RESOURCES = st.builds(
    lambda base, changes: base | changes,
    st.sampled_from([observation(), adverse_event(), {"resourceType": "Bundle"}, {"resourceType": "Patient"}, {}]),
    st.dictionaries(st.sampled_from(FHIR_KEYS), FHIR_VALUES | JSON, max_size=5),
)
ENTRIES = st.one_of(st.builds(lambda resource: {"resource": resource}, RESOURCES), JSON)
BUNDLES = st.builds(lambda entries: {"resourceType": "Bundle", "entry": entries}, st.lists(ENTRIES, max_size=4))


@FUZZ
@given(RESOURCES | BUNDLES)
def test_fhir_documents(resource: dict[str, Any]) -> None:
    document = orjson.dumps(resource)
    _check(parse_fhir_document(document, CONFIG, origin="fuzz:1"))
    _check(list(parse_stream(document + b"\n" + document, CONFIG, name="fuzz")))
    _check(list(parse_stream(orjson.dumps(resource, option=orjson.OPT_INDENT_2), CONFIG, name="fuzz")))
