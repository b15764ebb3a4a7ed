"""FHIR R4 Observation, AdverseEvent and Bundle (INTERFACES §1.2, §2, §3)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from ingest_builders import STUDY, adverse_event, observation, parsed, rejected

from services.ingest.domain import ParserConfig, parse_fhir_document
from services.ingest.domain.keys import content_hash
from shared.events import AdverseEventReported, LabResultRecorded, VitalSignRecorded, deterministic_id

SPEC_SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "spec_samples"  # copies of INTERFACES' samples


def _one(config: ParserConfig, resource: dict[str, Any], **kwargs: Any) -> Any:
    (result,) = parse_fhir_document(orjson.dumps(resource), config, origin="in.json:1", **kwargs)
    return result


def test_every_field_of_an_observation_event(config: ParserConfig) -> None:
    result = parsed(_one(config, observation()))
    assert (result.source, result.key) == ("in.json:1", "FHIR:Observation/obs-1/_history/2")
    (event,) = result.events
    assert event.model_dump() == {
        "event_id": deterministic_id("FHIR:Observation/obs-1/_history/2", "FHIR:Observation/obs-1/_history/2", "1"),
        "kind": "lab.result",
        "schema_version": 1,
        "study_id": "ANAKINRA-AD",
        "subject_id": "AD-003",
        "occurred_at": datetime(2026, 2, 20, 9, 0, tzinfo=UTC),
        "recorded_at": datetime(2026, 2, 20, 9, 0, tzinfo=UTC),
        "source": "FHIR:Observation/obs-1/_history/2",
        "dedup_key": "FHIR:Observation/obs-1/_history/2",
        "correlation_id": "FHIR:Observation/obs-1/_history/2",
        "causation_id": None,
        "test": "NEUT",
        "loinc": "751-8",
        "value": Decimal("0.8"),
        "comparator": None,
        "unit": "10*9/L",
        "original_value": "0.8",
        "original_unit": "10*9/L",
        "ref_low": Decimal("1.8"),
        "ref_high": Decimal("8.0"),
        "status": "final",
        "specimen_id": "FHIR:AD-003:2026-02-20T09:00:00Z",
        "result_key": "FHIR:Observation/obs-1",
        "derived": False,
        "data_issue": None,
        "age_at_collection": None,  # no date of birth in this format
        "age_unit": None,
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("final", "final"),
        ("amended", "corrected"),
        ("corrected", "corrected"),
        ("preliminary", "preliminary"),
        ("entered-in-error", "deleted"),
        ("cancelled", "cancelled"),
    ],
)
def test_observation_status(config: ParserConfig, status: str, expected: str) -> None:
    (event,) = parsed(_one(config, observation(status=status))).events
    assert isinstance(event, LabResultRecorded)
    assert event.status == expected
    assert event.value == (None if expected == "cancelled" else Decimal("0.8"))


def test_comparator_unit_conversion_and_specimen_reference(config: ParserConfig) -> None:
    resource = observation(
        valueQuantity={"value": 500, "comparator": "<", "unit": "cells/uL"},
        referenceRange=[{"low": {"value": 1800, "unit": "cells/uL"}, "high": {"value": 8000, "unit": "cells/uL"}}],
        specimen={"reference": "Specimen/SP-9"},
    )
    (event,) = parsed(_one(config, resource)).events
    assert isinstance(event, LabResultRecorded)
    assert (event.value, event.comparator, event.unit) == (Decimal("0.5"), "<", "10*9/L")
    assert (event.ref_low, event.ref_high, event.specimen_id) == (Decimal("1.8"), Decimal("8"), "Specimen/SP-9")


def test_limits_in_another_unit_are_not_guessed(config: ParserConfig) -> None:
    resource = observation(referenceRange=[{"low": {"value": 1800, "code": "/uL"}, "high": {"value": 8.0}}])
    (event,) = parsed(_one(config, resource)).events
    assert isinstance(event, LabResultRecorded)
    assert (event.ref_low, event.ref_high) == (None, Decimal("8.0"))


@pytest.mark.parametrize(
    ("value", "issue"),
    [
        ({"valueRange": {"low": {"value": 1}, "high": {"value": 2}}}, "valueRange is a range, not a single result"),
        ({"valueRatio": {}}, "valueRatio is a ratio, not a single result"),
        ({"valueString": "clumped"}, "value 'clumped' is not numeric"),
        ({"dataAbsentReason": {"text": "lost"}}, "value missing for a final result"),
        ({"valueQuantity": {"value": 1.1, "unit": "mg"}}, "unit 'mg' is not a known unit of NEUT"),
    ],
)
def test_values_that_cannot_be_graded_are_data_issues(config: ParserConfig, value: dict[str, Any], issue: str) -> None:
    resource = {k: v for k, v in observation().items() if k != "valueQuantity"} | value
    (event,) = parsed(_one(config, resource)).events
    assert isinstance(event, LabResultRecorded)
    assert (event.value, event.data_issue) == (None, issue)


@pytest.mark.parametrize("value", [{"valueString": "<0.5"}, {"valueInteger": 2}])
def test_numbers_without_a_unit_cannot_be_graded(config: ParserConfig, value: dict[str, Any]) -> None:
    base = {k: v for k, v in observation().items() if k != "valueQuantity"}
    (event,) = parsed(_one(config, base | value)).events
    assert isinstance(event, LabResultRecorded)
    assert (event.value, event.unit, event.data_issue) == (None, None, "unit missing for NEUT")
    assert event.original_value == str(next(iter(value.values())))


def test_body_temperature_is_a_vital_sign(config: ParserConfig) -> None:
    resource = observation(
        code={"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
        valueQuantity={"value": 101.3, "unit": "degF", "code": "[degF]"},
    )
    (event,) = parsed(_one(config, resource)).events
    assert isinstance(event, VitalSignRecorded)
    assert (event.value, event.unit, event.status, event.result_key) == (
        Decimal("38.5"),
        "Cel",
        "final",
        "FHIR:Observation/obs-1",
    )


def test_unknown_code_is_accepted_and_yields_nothing(config: ParserConfig) -> None:
    resource = observation(code={"coding": [{"system": "http://loinc.org", "code": "4544-3"}]}, subject=None)
    assert parsed(_one(config, resource)).events == []


def test_without_version_id_a_content_hash_identifies_the_version(config: ParserConfig) -> None:
    resource = observation(meta={"lastUpdated": "2026-02-20T10:30:00+01:00"})
    result = parsed(_one(config, resource))
    assert result.key == f"FHIR:Observation/obs-1/_history/{content_hash(resource)}"
    assert len(content_hash(resource)) == 16
    assert result.events[0].recorded_at == datetime(2026, 2, 20, 9, 30, tzinfo=UTC)
    changed = parsed(_one(config, resource | {"valueQuantity": {"value": 0.7, "code": "10*9/L"}}))
    assert changed.key != result.key


def test_subject_identifier_when_there_is_no_patient_reference(config: ParserConfig) -> None:
    resource = observation(subject={"identifier": {"system": "urn:study:ANAKINRA-AD", "value": "AD-008"}})
    assert parsed(_one(config, resource)).events[0].subject_id == "AD-008"


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        (
            {"resourceType": "Patient"},
            "FHIR Patient/obs-1: resourceType: 'Patient' is not accepted (Observation, AdverseEvent or Bundle)",
        ),
        ({"resourceType": None}, "FHIR resource/obs-1: resourceType: missing (Observation, AdverseEvent or Bundle)"),
        (
            {"id": None},
            "FHIR Observation at in.json:1: id: missing (needed to identify the resource and its corrections)",
        ),
        ({"subject": None}, "FHIR Observation/obs-1: subject: missing"),
        (
            {"subject": {"reference": "Group/7"}},
            "FHIR Observation/obs-1: subject: neither a Patient/<id> reference nor an identifier value",
        ),
        ({"status": None}, "FHIR Observation/obs-1: status: missing"),
        ({"status": "done"}, "FHIR Observation/obs-1: status: 'done' is not an R4 ObservationStatus"),
        (
            {"effectiveDateTime": None},
            "FHIR Observation/obs-1: effectiveDateTime: missing (no effective[x] collection time)",
        ),
        (
            {"effectiveDateTime": "20/02/2026"},
            "FHIR Observation/obs-1: effectiveDateTime: '20/02/2026' is not an ISO 8601 date or date-time",
        ),
        ({"subject": "Patient/AD-003"}, "FHIR Observation/obs-1: subject: expected a JSON object, got str"),
        (
            {"valueQuantity": {"value": 1, "comparator": "~"}},
            "FHIR Observation/obs-1: valueQuantity.comparator: '~' is not one of < <= > >=",
        ),
    ],
)
def test_observation_rejections(config: ParserConfig, changes: dict[str, Any], error: str) -> None:
    resource = {k: v for k, v in (observation() | changes).items() if v is not None}
    assert rejected(_one(config, resource)).error == error


def test_unparseable_document(config: ParserConfig) -> None:
    found = rejected(_one_raw(config, b'{"resourceType": "Observation",'))
    assert found.error.startswith("FHIR document at in.json:1: JSON: not valid JSON (")
    assert found.raw_redacted is not None and found.raw_redacted["length"] == 31


def _one_raw(config: ParserConfig, document: bytes) -> Any:
    (result,) = parse_fhir_document(document, config, origin="in.json:1")
    return result


def test_adverse_event_fields(config: ParserConfig) -> None:
    resource = adverse_event(
        seriousness={"coding": [{"code": "serious"}]},
        outcome={"coding": [{"code": "fatal"}]},
        suspectEntity=[{"causality": [{"assessment": {"coding": [{"code": "Probable-Likely"}]}}]}],
        extension=[{"url": "http://x.org/fhir/StructureDefinition/ctcae-grade", "valueInteger": 4}],
        meta={"versionId": "3", "lastUpdated": "2026-02-22T08:00:00Z"},
    )
    result = parsed(_one(config, resource))
    (event,) = result.events
    assert event.model_dump() == {
        "event_id": deterministic_id(result.key, "FHIR:AdverseEvent/ae-1/_history/3", "1"),
        "kind": "adverse.event",
        "schema_version": 1,
        "study_id": "ANAKINRA-AD",
        "subject_id": "AD-003",
        "occurred_at": datetime(2026, 2, 21, tzinfo=UTC),
        "recorded_at": datetime(2026, 2, 22, 8, 0, tzinfo=UTC),
        "source": "FHIR:AdverseEvent/ae-1/_history/3",
        "dedup_key": "FHIR:AdverseEvent/ae-1/_history/3",
        "correlation_id": "FHIR:AdverseEvent/ae-1/_history/3",
        "causation_id": None,
        "ae_id": "ae-1",
        "term": "redness at injection site",
        "decod": "Injection site reaction",
        "meddra_code": "10022095",
        "soc": None,
        "soc_code": None,
        "grade": 4,
        "criteria": {"AESER": True},
        "causality": "Probable-Likely",
        "outcome": "FATAL",
        "ended_at": None,
    }


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"seriousness": {"coding": [{"code": "C41335"}]}}, {"criteria": {"AESER": True}}),
        ({"seriousness": {"coding": [{"code": "non-serious"}]}}, {"criteria": {"AESER": False}}),
        ({"seriousness": {"coding": [{"code": "C41336"}]}}, {"criteria": {"AESER": False}}),
        ({"severity": {"coding": [{"code": "mild"}]}}, {"grade": 1}),
        ({"severity": {"coding": [{"code": "moderate"}]}}, {"grade": 2}),
        ({"severity": {"coding": [{"code": "severe"}]}}, {"grade": 3}),
        (
            {
                "severity": {"coding": [{"code": "mild"}]},
                "extension": [
                    {
                        "url": "https://h/StructureDefinition/ctcae-grade",
                        "valueCodeableConcept": {"coding": [{"code": "3"}]},
                    }
                ],
            },
            {"grade": 3},
        ),
        ({"outcome": {"coding": [{"code": "recovering"}]}}, {"outcome": "recovering"}),
        ({"suspectEntity": [{"causality": [{"productRelatedness": "related"}]}]}, {"causality": "related"}),
        ({"suspectEntity": [{"causality": [{"assessment": {"text": "possible"}}]}]}, {"causality": "possible"}),
        ({"event": {"text": "headache"}}, {"term": "headache", "decod": None, "meddra_code": None}),
        (
            {"event": {"coding": [{"system": "http://snomed.info/sct", "code": "25064002", "display": "Headache"}]}},
            {"term": "Headache", "decod": "Headache"},
        ),
        ({"date": None, "recordedDate": "2026-02-23T10:00:00"}, {"occurred_at": datetime(2026, 2, 23, 10, tzinfo=UTC)}),
        ({"subject": {"reference": "https://ehr.example/fhir/Patient/AD-005"}}, {"subject_id": "AD-005"}),
    ],
)
def test_adverse_event_mapping(config: ParserConfig, changes: dict[str, Any], expected: dict[str, Any]) -> None:
    resource = {k: v for k, v in (adverse_event() | changes).items() if v is not None}
    (event,) = parsed(_one(config, resource)).events
    assert isinstance(event, AdverseEventReported)
    dumped = event.model_dump()
    assert {key: dumped[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"event": None}, "FHIR AdverseEvent/ae-1: event: missing (no text, display or code)"),
        ({"date": None}, "FHIR AdverseEvent/ae-1: date: missing (no onset date, detected or recordedDate)"),
        (
            {"seriousness": {"coding": [{"code": "maybe"}]}},
            "FHIR AdverseEvent/ae-1: seriousness: 'maybe' is not serious/non-serious (or NCIt C41335/C41336)",
        ),
        (
            {"severity": {"coding": [{"code": "grave"}]}},
            "FHIR AdverseEvent/ae-1: severity: 'grave' is not mild, moderate or severe",
        ),
        (
            {"extension": [{"url": "x/StructureDefinition/ctcae-grade", "valueInteger": 7}]},
            "FHIR AdverseEvent/ae-1: extension ctcae-grade: 7 is not a CTCAE grade 0-5",
        ),
        (
            {"extension": [{"url": "x/StructureDefinition/ctcae-grade", "valueInteger": True}]},
            "FHIR AdverseEvent/ae-1: extension ctcae-grade: True is not a CTCAE grade 0-5",
        ),
    ],
)
def test_adverse_event_rejections(config: ParserConfig, changes: dict[str, Any], error: str) -> None:
    resource = {k: v for k, v in (adverse_event() | changes).items() if v is not None}
    assert rejected(_one(config, resource)).error == error


def test_potential_adverse_event_yields_nothing(config: ParserConfig) -> None:
    assert parsed(_one(config, adverse_event(actuality="potential"))).events == []


@pytest.mark.parametrize("bundle_type", ["collection", "transaction", "batch"])
def test_bundle_entries_in_order_and_other_resources_ignored(config: ParserConfig, bundle_type: str) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": bundle_type,
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "AD-003"}},
            {"fullUrl": "urn:uuid:6c1e", "resource": {k: v for k, v in observation().items() if k != "id"}},
            {"resource": {"resourceType": "Encounter", "id": "e1"}},
            {"resource": adverse_event(status=None, date="not a date")},
            {"request": {"method": "DELETE", "url": "Observation/x"}},
            "junk",
        ],
    }
    results = parse_fhir_document(orjson.dumps(bundle), config, origin="b.json:1", entry_origin="b.json:")
    assert [(r.source, type(r).__name__) for r in results] == [
        ("b.json:#entry[1]", "Parsed"),
        ("b.json:#entry[3]", "Rejected"),
        ("b.json:#entry[5]", "Rejected"),
    ]
    assert parsed(results[0]).key == "FHIR:Observation/6c1e/_history/2"
    assert (
        rejected(results[1]).error == "FHIR AdverseEvent/ae-1: date: 'not a date' is not an ISO 8601 date or date-time"
    )
    assert rejected(results[2]).error == "FHIR Bundle at b.json:1: entry[5]: not a JSON object"


def test_bundle_last_updated_is_the_ingestion_time_of_entries_without_their_own(config: ParserConfig) -> None:
    bundle = {
        "resourceType": "Bundle",
        "meta": {"lastUpdated": "2026-02-25T00:00:00Z"},
        "entry": [{"resource": observation()}],
    }
    (result,) = parse_fhir_document(orjson.dumps(bundle), config, origin="b.json:1")
    assert parsed(result).events[0].recorded_at == datetime(2026, 2, 25, tzinfo=UTC)


def test_sample_bundle_from_the_spec(config: ParserConfig) -> None:
    with open(SPEC_SAMPLES / "fhir_bundle.json", "rb") as sample:
        results = parse_fhir_document(sample.read(), config, origin="s:1", entry_origin="s:")
    assert [parsed(r).key for r in results] == [
        "FHIR:Observation/obs-s1/_history/1",
        "FHIR:AdverseEvent/ae-s1/_history/1",
    ]
    ae = results[1]
    assert isinstance(ae.events[0], AdverseEventReported)
    assert (ae.events[0].grade, ae.events[0].criteria, ae.events[0].causality) == (
        1,
        {"AESER": False},
        "Probable-Likely",
    )


def _bundle_with_patient(patient: dict[str, Any], reference: str = "urn:uuid:p-1") -> bytes:
    return orjson.dumps(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"fullUrl": "urn:uuid:p-1", "resource": {"resourceType": "Patient", **patient}},
                {"resource": observation(subject={"reference": reference})},
            ],
        }
    )


@pytest.mark.parametrize(
    ("patient", "subject"),
    [
        (  # INTERFACES §1.2: the identifier the study assigns, as PID-3.4 picks PID-3 (not the MRN)
            {
                "id": "srv-9",
                "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-1"}, {"system": STUDY, "value": "AD-007"}],
                "name": [{"family": "Doe"}],
                "birthDate": "2011-07-04",
            },
            "AD-007",
        ),
        ({"id": "AD-008", "birthDate": "2011-07-04"}, "AD-008"),  # as `Patient/AD-008` would read
        ({"identifier": [{"system": "urn:oid:1.2.3", "value": "AD-009"}]}, "AD-009"),
    ],
)
def test_urn_uuid_subject_resolves_to_the_bundles_patient_entry(
    config: ParserConfig, patient: dict[str, Any], subject: str
) -> None:
    (result,) = parse_fhir_document(_bundle_with_patient(patient), config, origin="b.json:1")
    found = parsed(result)
    assert found.events[0].subject_id == subject
    stored = orjson.dumps([found.raw_redacted, *(event.model_dump(mode="json") for event in found.events)])
    assert b"Doe" not in stored
    assert b"2011-07-04" not in stored  # the date of birth never leaves the parser


def test_urn_uuid_subject_without_its_patient_entry_is_rejected(config: ParserConfig) -> None:
    document = _bundle_with_patient({"id": "AD-008"}, reference="urn:uuid:elsewhere")
    (result,) = parse_fhir_document(document, config, origin="b.json:1")
    assert rejected(result).error == (
        "FHIR Observation/obs-1: subject: neither a Patient/<id> reference nor an identifier value"
    )
