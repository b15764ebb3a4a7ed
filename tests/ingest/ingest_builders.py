"""Builders for ingest tests: ER7 messages, FHIR resources and records written out by hand.

Imported as a top-level module (pytest puts this directory on sys.path), hence the unique name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.ingest.domain import Parsed, ParserConfig, ParseResult, Rejected

STUDY = "ANAKINRA-AD"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "inputs"


def make_config() -> ParserConfig:
    return ParserConfig(frozenset({STUDY, "OTHER-STUDY"}), STUDY)


def obx(
    set_id: str,
    loinc: str,
    value: str,
    unit: str = "10*3/uL",
    ref: str = "",
    *,
    status: str = "F",
    value_type: str = "NM",
    observed: str = "",
) -> str:
    return f"OBX|{set_id}|{value_type}|{loinc}^Test^LN||{value}|{unit}|{ref}|N|||{status}|||{observed}"


def oru(
    *observations: str,
    control: str = "CTRL-1",
    facility: str = "NIHCC-LAB",
    sent: str = "20260302081500",
    message_type: str = "ORU^R01^ORU_R01",
    processing: str = "P",
    pid3: str = "AD-001^^^ANAKINRA-AD^SUBJ",
    filler: str = "FO-1^LIS",
    collected: str = "20260302080000",
    terminator: str = "\r",
) -> str:
    segments = [
        f"MSH|^~\\&|LIS|{facility}|TRIALWATCH|NIAID|{sent}||{message_type}|{control}|{processing}|2.5.1",
        f"PID|1||{pid3}||Doe^Jane^Q||20110704|F|||12 Elm St^^Bethesda^MD^20892||(301)555-0100",
        f"OBR|1|PL-1|{filler}|57021-8^CBC^LN|||{collected}",
        *observations,
    ]
    return terminator.join(segments) + terminator


def parsed(result: ParseResult) -> Parsed:
    assert isinstance(result, Parsed), result
    return result


def rejected(result: ParseResult) -> Rejected:
    assert isinstance(result, Rejected), result
    return result


def observation(**overrides: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": "obs-1",
        "meta": {"versionId": "2"},
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "751-8"}]},
        "subject": {"reference": "Patient/AD-003"},
        "effectiveDateTime": "2026-02-20T09:00:00Z",
        "valueQuantity": {"value": 0.8, "unit": "10^9/L", "system": "http://unitsofmeasure.org", "code": "10*9/L"},
        "referenceRange": [{"low": {"value": 1.8, "code": "10*9/L"}, "high": {"value": 8.0, "code": "10*9/L"}}],
    }
    resource.update(overrides)
    return resource


def adverse_event(**overrides: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "AdverseEvent",
        "id": "ae-1",
        "meta": {"versionId": "1"},
        "actuality": "actual",
        "subject": {"reference": "Patient/AD-003"},
        "event": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/MDRAE",
                    "code": "10022095",
                    "display": "Injection site reaction",
                }
            ],
            "text": "redness at injection site",
        },
        "date": "2026-02-21",
    }
    resource.update(overrides)
    return resource


def record(domain: str, **keys: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"DOMAIN": domain, "STUDYID": STUDY, "USUBJID": "AD-004", "RECID": f"{domain}-1"}
    base.update(keys)
    return {key: value for key, value in base.items() if value is not None}
