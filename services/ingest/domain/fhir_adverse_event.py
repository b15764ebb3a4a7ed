"""FHIR R4 AdverseEvent -> AdverseEventReported (INTERFACES §1.2).

Only normalisation: the engine decides relatedness, SOC and seriousness consequences. Seriousness
`serious`/C41335 -> criteria {"AESER": True}; outcome `fatal` -> "FATAL"; CTCAE grade from the
`.../StructureDefinition/ctcae-grade` extension, else severity mild/moderate/severe -> 1/2/3.
A `potential` AdverseEvent (a near miss, R4 `actuality`) is accepted and yields nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from services.ingest.domain.context import RecordContext
from services.ingest.domain.fhir_fields import (
    codings,
    elements,
    instant,
    recorded_at,
    string,
    subject_id,
)
from services.ingest.domain.model import InputError, ParserConfig
from services.ingest.domain.terminology import AdverseEventCodes
from shared.events import AdverseEventReported, Event
from shared.events.clinical import SeriousnessCriterion
from shared.events.construct import construct

_GRADES = frozenset(range(6))
_GRADE_CODES = {str(grade): grade for grade in _GRADES}


def _first_code(items: list[dict[str, Any]]) -> str | None:
    for coding in items:
        code = coding.get("code")
        if isinstance(code, str) and code:
            return code
    return None


def _grade_value(extension: dict[str, Any]) -> object:
    if "valueInteger" in extension:
        return extension["valueInteger"]
    return _first_code(codings(extension, "valueCodeableConcept", "extension.valueCodeableConcept"))


def _grade(resource: dict[str, Any], codes: AdverseEventCodes) -> int | None:
    """CTCAE grade 0-5 from the ctcae-grade extension, else from `severity`."""
    for extension in elements(resource, "extension", "extension"):
        url = extension.get("url")
        if isinstance(url, str) and url.endswith(codes.grade_extension_suffix):
            value = _grade_value(extension)
            grade = _GRADE_CODES.get(value) if isinstance(value, str) else value
            if isinstance(grade, bool) or not isinstance(grade, int) or grade not in _GRADES:
                raise InputError("extension ctcae-grade", f"{value!r} is not a CTCAE grade 0-5")
            return grade
    severity = _first_code(codings(resource, "severity", "severity"))
    if severity is None:
        return None
    if severity not in codes.severity_grade:
        raise InputError("severity", f"{severity!r} is not mild, moderate or severe")
    return codes.severity_grade[severity]


def _criteria(resource: dict[str, Any], codes: AdverseEventCodes) -> dict[SeriousnessCriterion, bool]:
    code = _first_code(codings(resource, "seriousness", "seriousness"))
    if code is None:
        return {}
    if code in codes.serious:
        return {"AESER": True}
    if code in codes.non_serious:
        return {"AESER": False}
    raise InputError("seriousness", f"{code!r} is not serious/non-serious (or NCIt C41335/C41336)")


def _causality(resource: dict[str, Any]) -> str | None:
    """The first WHO-UMC assessment (code, else text), else productRelatedness, over suspectEntity."""
    for index, suspect in enumerate(elements(resource, "suspectEntity", "suspectEntity")):
        for causality in elements(suspect, "causality", f"suspectEntity[{index}].causality"):
            path = f"suspectEntity[{index}].causality"
            code = _first_code(codings(causality, "assessment", f"{path}.assessment"))
            assessment = causality.get("assessment")
            text = assessment.get("text") if isinstance(assessment, dict) else None
            related = code or (text if isinstance(text, str) and text else None)
            if related is None:
                related = string(causality, "productRelatedness", f"{path}.productRelatedness")
            if related is not None:
                return related
    return None


def _term(resource: dict[str, Any], codes: AdverseEventCodes) -> tuple[str, str | None, str | None]:
    """(verbatim term, coded term, MedDRA code) from `event`."""
    items = codings(resource, "event", "event")
    meddra = next((c for c in items if c.get("system") == codes.meddra_system), None)
    display = next((c.get("display") for c in items if isinstance(c.get("display"), str)), None)
    event = resource.get("event")
    text = event.get("text") if isinstance(event, dict) else None
    term = text if isinstance(text, str) and text else display or _first_code(items)
    if term is None:
        raise InputError("event", "missing (no text, display or code)")
    decod = meddra.get("display") if meddra is not None else display
    code = meddra.get("code") if meddra is not None else None
    return term, decod if isinstance(decod, str) else None, code if isinstance(code, str) else None


def _onset(resource: dict[str, Any]) -> datetime:
    for name in ("date", "detected", "recordedDate"):
        moment = instant(resource, name, name)
        if moment is not None:
            return moment
    raise InputError("date", "missing (no onset date, detected or recordedDate)")


def adverse_event_events(
    resource: dict[str, Any],
    config: ParserConfig,
    key: str,
    resource_id: str,
    received_at: datetime | None,
    *,
    bundle_subjects: Mapping[str, str],
) -> list[Event]:
    """The one AdverseEventReported of an actual adverse event."""
    if string(resource, "actuality", "actuality") == "potential":
        return []
    codes = config.terminology.adverse_event
    term, decod, meddra_code = _term(resource, codes)
    outcome = _first_code(codings(resource, "outcome", "outcome"))
    ctx = RecordContext(
        config.default_study_id,
        subject_id(resource, bundle_subjects),
        key,
        recorded_at(resource, received_at),
        event_ids=config.event_ids,
    )
    fields = ctx.envelope("adverse.event", key, 1, _onset(resource))
    fields.update(
        ae_id=resource_id,
        term=term,
        decod=decod,
        meddra_code=meddra_code,
        soc=None,
        soc_code=None,
        grade=_grade(resource, codes),
        criteria=_criteria(resource, codes),
        causality=_causality(resource),
        outcome="FATAL" if outcome in codes.fatal_outcomes else outcome,
        ended_at=None,
    )
    return [construct(AdverseEventReported, fields)]
