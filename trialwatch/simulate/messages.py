"""The wire formats the simulated systems send (INTERFACES §1): HL7 v2.5.1 ORU^R01 from the lab, FHIR R4
AdverseEvent and TrialWatch NDJSON records from the EDC. Every message carries its ingestion time (MSH-7,
meta.lastUpdated, RECEIVEDDTC): it is the data clock that starts and breaches regulatory clocks (SAFETY_RULES §5).
No names, birth dates or addresses: a simulated participant has only a study subject id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson

from trialwatch.simulate.scenario import LabTest

CBC_PANEL = "57021-8^CBC W Auto Differential panel - Blood^LN"
CHEMISTRY_PANEL = "24323-8^Comprehensive metabolic 2000 panel - Serum or Plasma^LN"
CBC_TESTS = ("WBC", "NEUT", "LYM", "PLAT", "HGB")
FHIR_GRADE_URL = "http://trialwatch.example.org/fhir/StructureDefinition/ctcae-grade"
WHO_UMC = {
    "DEFINITELY RELATED": "certain",
    "PROBABLY RELATED": "probably-likely",
    "POSSIBLY RELATED": "possible",
    "UNLIKELY RELATED": "unlikely",
    "NOT RELATED": "unlikely",
}


def hl7_time(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S")


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class LabResult:
    test: LabTest
    value: float
    status: str = "F"

    def text(self) -> str:
        return f"{self.value:.{self.test.decimals}f}"

    def flag(self) -> str:
        return "L" if self.value < self.test.low else "H" if self.value > self.test.high else ""


@dataclass(frozen=True)
class Specimen:
    filler: str  # OBR-3: identifies the specimen; a correction reuses it
    panel: str
    results: Sequence[LabResult]


@dataclass(frozen=True)
class LabMessage:
    facility: str
    control_id: str
    study_id: str
    subject_id: str  # empty: the malformed message without PID-3
    born: date | None  # PID-7
    sent_at: datetime
    collected_at: datetime
    specimens: Sequence[Specimen]

    def er7(self) -> bytes:
        segments = [
            f"MSH|^~\\&|LIS|{self.facility}|TRIALWATCH|{self.study_id}|{hl7_time(self.sent_at)}||ORU^R01^ORU_R01|"
            f"{self.control_id}|P|2.5.1",
            self._pid(),
        ]
        for number, specimen in enumerate(self.specimens, 1):
            segments.append(f"ORC|RE|PLC-{specimen.filler}|{specimen.filler}^LIS")
            segments.append(
                f"OBR|{number}|PLC-{specimen.filler}|{specimen.filler}^LIS|{specimen.panel}|||"
                f"{hl7_time(self.collected_at)}"
            )
            segments += [_obx(index, result) for index, result in enumerate(specimen.results, 1)]
        return ("\r".join(segments) + "\r").encode()

    def _pid(self) -> str:
        if not self.subject_id:
            return "PID|1||"
        born = f"{self.born:%Y%m%d}" if self.born else ""
        return f"PID|1||{self.subject_id}^^^{self.study_id}^SUBJ||||{born}"  # PID-7: date of birth

    def evidence(self) -> list[str]:
        """INTERFACES §3 keys: one per OBX set id (set ids restart in each OBR)."""
        return [
            f"HL7:{self.facility}:{self.control_id}:{index}"
            for specimen in self.specimens
            for index in range(1, len(specimen.results) + 1)
        ]


def _obx(index: int, result: LabResult) -> str:
    test = result.test
    reference = f"{test.low:g}-{test.high:g}"
    return (
        f"OBX|{index}|NM|{test.loinc}^{test.name}^LN||{result.text()}|{test.unit}|{reference}|{result.flag()}|||"
        f"{result.status}"
    )


def record(domain: str, study_id: str, record_id: str, received_at: datetime, **fields: Any) -> bytes:
    """One TrialWatch NDJSON record (INTERFACES §1.3)."""
    body: dict[str, Any] = {"DOMAIN": domain, "STUDYID": study_id}
    body.update(fields)
    body.update(RECID=record_id, RECEIVEDDTC=iso(received_at))
    return orjson.dumps(body)


def record_key(study_id: str, domain: str, record_id: str) -> str:
    return f"REC:{study_id}:{domain}:{record_id}"


def ae_record_fields(ae: dict[str, Any], subject_id: str, onset: datetime) -> dict[str, Any]:
    """AE domain keys of an adverse event as the EDC exports it."""
    fields: dict[str, Any] = {
        "USUBJID": subject_id,
        "AETERM": ae["term"],
        "AEDECOD": ae["decoded"],
        "AEPTCD": ae["meddra"],
        "AETOXGR": str(ae["grade"]),
        "AESER": "Y" if ae["serious"] else "N",
        "AEREL": ae.get("causality", "NOT RELATED"),
        "AESTDTC": iso(onset),
    }
    if "soc" in ae:
        fields["AESOC"] = ae["soc"]
    for flag, key in (("hospitalised", "AESHOSP"), ("life_threatening", "AESLIFE")):
        if ae.get(flag):
            fields[key] = "Y"
    return fields


def adverse_event_resource(
    ae: dict[str, Any], resource_id: str, subject_id: str, onset: datetime, reported: datetime
) -> bytes:
    """A FHIR R4 AdverseEvent (INTERFACES §1.2) with the CTCAE grade extension and WHO-UMC causality."""
    seriousness = "serious" if ae["serious"] else "non-serious"
    resource = {
        "resourceType": "AdverseEvent",
        "id": resource_id,
        "meta": {"versionId": "1", "lastUpdated": iso(reported)},
        "actuality": "actual",
        "subject": {"reference": f"Patient/{subject_id}"},
        "event": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/MDRAE",
                    "code": ae["meddra"],
                    "display": ae["decoded"],
                }
            ],
            "text": ae["term"],
        },
        "date": iso(onset),
        "seriousness": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness", "code": seriousness}
            ]
        },
        "extension": [{"url": FHIR_GRADE_URL, "valueInteger": ae["grade"]}],
        "suspectEntity": [
            {
                "instance": {"display": "anakinra 100 mg/0.67 mL prefilled syringe"},
                "causality": [
                    {
                        "assessment": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/adverse-event-causality-assess",
                                    "code": WHO_UMC[ae.get("causality", "NOT RELATED")],
                                }
                            ]
                        }
                    }
                ],
            }
        ],
    }
    return orjson.dumps(resource)
