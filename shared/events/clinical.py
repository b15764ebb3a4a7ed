"""Canonical clinical event families, produced by ingest and consumed by safety_rules.

Values are `Decimal` in the canonical unit of their test (counts 10*9/L, haemoglobin g/L, enzymes U/L,
bilirubin and creatinine umol/L, temperature Cel); the original value and unit are kept beside them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, Field

from shared.events.envelope import Event

LabTest = Literal["NEUT", "NEUTLE", "NEUTBLE", "WBC", "PLAT", "HGB", "LYM", "ALT", "AST", "BILI", "ALP", "CREAT"]
ResultStatus = Literal["final", "corrected", "preliminary", "deleted", "cancelled"]
Comparator = Literal["<", "<=", ">", ">="]


class LabResultRecorded(Event):
    """One laboratory result (HL7 OBX, FHIR Observation, SDTM LB)."""

    kind: Literal["lab.result"] = "lab.result"
    schema_version: Literal[1] = 1
    test: LabTest = Field(description="Canonical test code (SDTM LBTESTCD)")
    loinc: str | None = Field(default=None, description="LOINC code as sent")
    value: Decimal | None = Field(description="Value in the canonical unit; null when not numeric")
    comparator: Comparator | None = Field(default=None, description="'<0.5' style qualifier")
    unit: str | None = Field(description="Canonical UCUM unit of `value`; null when the unit is unknown")
    original_value: str = Field(description="Value verbatim as sent")
    original_unit: str | None = Field(default=None, description="Unit verbatim as sent")
    ref_low: Decimal | None = Field(default=None, description="Lab's lower limit, canonical unit")
    ref_high: Decimal | None = Field(default=None, description="Lab's upper limit, canonical unit")
    status: ResultStatus = Field(description="Normalised result status")
    specimen_id: str = Field(description="Specimen identity (OBR-3, FHIR specimen, LBREFID)")
    result_key: str = Field(description="Identity a correction replaces (facility+OBR-3+test, FHIR id, ...)")
    derived: bool = Field(default=False, description="True when computed (ANC from WBC and %)")
    data_issue: str | None = Field(
        default=None, description="Why the value cannot be graded safely (unknown unit, non-numeric, range)"
    )
    age_at_collection: int | None = Field(
        default=None, description="Subject's age when the specimen was collected, in `age_unit` (HL7 PID-7)"
    )
    age_unit: Literal["YEARS", "MONTHS", "DAYS"] | None = Field(
        default=None, description="SDTM AGEU of `age_at_collection`: YEARS from 2 years, MONTHS from 1 month"
    )


class VitalSignRecorded(Event):
    """A vital sign; TrialWatch uses body temperature (LOINC 8310-5, VS TEMP)."""

    kind: Literal["vital.sign"] = "vital.sign"
    schema_version: Literal[1] = 1
    test: Literal["TEMP"] = Field(default="TEMP", description="Canonical vital-sign code")
    value: Decimal | None = Field(description="Value in Cel")
    unit: str | None = Field(description="Canonical unit (Cel) or null when unknown")
    original_value: str = Field(description="Value verbatim")
    original_unit: str | None = Field(default=None, description="Unit verbatim")
    status: ResultStatus = Field(default="final", description="Normalised status")
    result_key: str = Field(description="Identity a correction replaces")
    data_issue: str | None = Field(default=None, description="Why the value cannot be used")
    age_at_collection: int | None = Field(
        default=None, description="Subject's age when the specimen was collected, in `age_unit` (HL7 PID-7)"
    )
    age_unit: Literal["YEARS", "MONTHS", "DAYS"] | None = Field(
        default=None, description="SDTM AGEU of `age_at_collection`: YEARS from 2 years, MONTHS from 1 month"
    )


SeriousnessCriterion = Literal["AESER", "AESDTH", "AESLIFE", "AESHOSP", "AESDISAB", "AESCONG", "AESMIE"]


class AdverseEventReported(Event):
    """An adverse event (SDTM AE, FHIR AdverseEvent); a new version of the same ae_id is an update."""

    kind: Literal["adverse.event"] = "adverse.event"
    schema_version: Literal[1] = 1
    ae_id: str = Field(description="Source id of the AE (RECID or FHIR id) that REG records refer to")
    term: str = Field(description="Verbatim term (AETERM / event.text)")
    decod: str | None = Field(default=None, description="Coded term (AEDECOD / MedDRA display)")
    meddra_code: str | None = Field(default=None, description="MedDRA LLT or PT code")
    soc: str | None = Field(default=None, description="System organ class name as sent (AESOC)")
    soc_code: str | None = Field(default=None, description="System organ class code (AESOCCD)")
    grade: int | None = Field(default=None, description="CTCAE grade 1-5 as sent")
    criteria: dict[SeriousnessCriterion, bool] = Field(
        default_factory=dict, description="SAE flags as sent (only those present)"
    )
    causality: str | None = Field(default=None, description="Causality verbatim (AEREL / WHO-UMC code)")
    outcome: str | None = Field(default=None, description="Outcome verbatim (AEOUT / FHIR outcome)")
    ended_at: AwareDatetime | None = Field(default=None, description="AEENDTC")


class InjectionSiteReported(Event):
    """An injection-site report from the participant diary."""

    kind: Literal["injection.site"] = "injection.site"
    schema_version: Literal[1] = 1
    location: str | None = Field(default=None, description="ISRLOC")
    findings: dict[str, bool] = Field(
        description="Findings as sent: TEND, ERYTH, WARM, ITCH, PAIN, EDEMA, LIPO, ULCER, NECR"
    )
    erythema_mm: Decimal | None = Field(default=None, description="ISRERYMM")
    grade: int | None = Field(default=None, description="ISRTOXGR when sent (overrides derivation)")


class DoseRecorded(Event):
    """A scheduled dose, given or missed (SDTM EX)."""

    kind: Literal["dose"] = "dose"
    schema_version: Literal[1] = 1
    given: bool = Field(description="EXOCCUR = Y")
    dose: Decimal | None = Field(default=None, description="EXDOSE")
    dose_unit: str | None = Field(default=None, description="EXDOSU")


class DispositionRecorded(Event):
    """Enrolment, withdrawal or completion (SDTM DS)."""

    kind: Literal["disposition"] = "disposition"
    schema_version: Literal[1] = 1
    decision: Literal["ENROLLED", "WITHDRAWN", "COMPLETED"] = Field(description="DSDECOD")


class DsmbDecisionRecorded(Event):
    """A DSMB decision; RESUME unlatches a halting rule (or all when rule_id is null)."""

    kind: Literal["dsmb.decision"] = "dsmb.decision"
    schema_version: Literal[1] = 1
    decision: Literal["RESUME", "CONTINUE_PAUSE", "TERMINATE"] = Field(description="DSMBDEC")
    rule_id: str | None = Field(default=None, description="DSMBRULE: the halting rule it clears")


class RegulatorySubmissionRecorded(Event):
    """A submitted expedited report; stops the named clock of the referenced AE."""

    kind: Literal["regulatory.submission"] = "regulatory.submission"
    schema_version: Literal[1] = 1
    clock: Literal["SPONSOR-24H", "IND-7D", "IND-15D"] = Field(description="REGCLOCK")
    ae_ref: str = Field(description="REGAEREF: RECID of the AE record or FHIR AdverseEvent id")
    submitted_at: AwareDatetime = Field(description="REGDTC")


#: Any canonical clinical event, discriminated by `kind`.
ClinicalEvent = Annotated[
    LabResultRecorded
    | VitalSignRecorded
    | AdverseEventReported
    | InjectionSiteReported
    | DoseRecorded
    | DispositionRecorded
    | DsmbDecisionRecorded
    | RegulatorySubmissionRecorded,
    Field(discriminator="kind"),
]
