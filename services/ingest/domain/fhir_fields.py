"""Typed access to FHIR R4 JSON elements: a wrong JSON type is a rejection naming it (INTERFACES §2)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

from services.ingest.domain.keys import content_hash, fhir_source
from services.ingest.domain.model import InputError
from services.ingest.domain.times import iso_time

_PATIENT_REFERENCE = "Patient/"
_IDENTIFYING_CONTAINED = frozenset(("Patient", "RelatedPerson", "Person"))
#: No Patient entries to resolve subject references against (a resource outside a Bundle).
NO_SUBJECTS: Mapping[str, str] = MappingProxyType({})


def element(parent: dict[str, Any], name: str, path: str) -> dict[str, Any] | None:
    """An object-valued element, None when absent."""
    value = parent.get(name)
    if value is None or isinstance(value, dict):
        return value
    raise InputError(path, f"expected a JSON object, got {type(value).__name__}")


def elements(parent: dict[str, Any], name: str, path: str) -> list[dict[str, Any]]:
    """A repeating element as a list of objects (absent = empty)."""
    value = parent.get(name)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InputError(path, "expected a JSON array of objects")
    return value


def string(parent: dict[str, Any], name: str, path: str) -> str | None:
    """A string-valued element, None when absent or empty."""
    value = parent.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    raise InputError(path, f"expected a string, got {type(value).__name__}")


def codings(parent: dict[str, Any], name: str, path: str) -> list[dict[str, Any]]:
    """The codings of a CodeableConcept element."""
    concept = element(parent, name, path)
    return elements(concept, "coding", f"{path}.coding") if concept is not None else []


def instant(parent: dict[str, Any], name: str, path: str) -> datetime | None:
    """An ISO 8601 dateTime/instant element as aware UTC; None when absent."""
    text = string(parent, name, path)
    if text is None:
        return None
    moment = iso_time(text)
    if moment is None:
        raise InputError(path, f"{text!r} is not an ISO 8601 date or date-time")
    return moment


def identity(resource: dict[str, Any], resource_type: str, fallback_id: str | None) -> tuple[str, str]:
    """(resource id, evidence key) — `FHIR:<type>/<id>/_history/<versionId>`, a content hash without one."""
    resource_id = string(resource, "id", "id") or fallback_id
    if resource_id is None:
        raise InputError("id", "missing (needed to identify the resource and its corrections)")
    meta = element(resource, "meta", "meta")
    version = string(meta, "versionId", "meta.versionId") if meta is not None else None
    return resource_id, fhir_source(resource_type, resource_id, version or content_hash(resource))


def subject_id(resource: dict[str, Any], bundle_subjects: Mapping[str, str] = NO_SUBJECTS) -> str:
    """USUBJID from `subject.reference` `Patient/<id>`, or a reference to a Patient entry of the same Bundle
    (`urn:uuid:...`, its fullUrl: `bundle_subjects`), else `subject.identifier.value` (INTERFACES §1.2)."""
    subject = element(resource, "subject", "subject")
    if subject is None:
        raise InputError("subject", "missing")
    reference = string(subject, "reference", "subject.reference")
    if reference is not None and _PATIENT_REFERENCE in reference:
        found = reference.rsplit(_PATIENT_REFERENCE, 1)[1].split("/", 1)[0]
        if found:
            return found
    if reference is not None and reference in bundle_subjects:
        return bundle_subjects[reference]
    identifier = element(subject, "identifier", "subject.identifier")
    value = string(identifier, "value", "subject.identifier.value") if identifier is not None else None
    if value is None:
        raise InputError("subject", "neither a Patient/<id> reference nor an identifier value")
    return value


def patient_subject(patient: dict[str, Any], study_ids: frozenset[str]) -> str | None:
    """The USUBJID a Patient resource names, for references to it within a Bundle: the value of its
    identifier whose `system` is a configured study (as PID-3.4 assigns PID-3), else its `id` (as a
    `Patient/<id>` reference reads), else its first identifier value; None when it names none.
    Nothing else of the Patient (name, birth date, address) is read."""
    identifiers = patient.get("identifier")
    values: list[tuple[object, str]] = []
    if isinstance(identifiers, list):
        for identifier in identifiers:
            value = identifier.get("value") if isinstance(identifier, dict) else None
            if isinstance(value, str) and value:
                values.append((identifier.get("system"), value))
    for system, value in values:
        if system in study_ids:
            return value
    resource_id = patient.get("id")
    if isinstance(resource_id, str) and resource_id:
        return resource_id
    return values[0][1] if values else None


def recorded_at(resource: dict[str, Any], received_at: datetime | None) -> datetime | None:
    """Ingestion time: `meta.lastUpdated`, else the caller's (SAFETY_RULES §5)."""
    meta = element(resource, "meta", "meta")
    updated = instant(meta, "lastUpdated", "meta.lastUpdated") if meta is not None else None
    return updated or received_at


def redacted(resource: dict[str, Any]) -> dict[str, Any]:
    """The storable copy: no narrative, no contained Patient-like resources, no subject display name."""
    copy = {key: value for key, value in resource.items() if key != "text"}
    contained = copy.get("contained")
    if isinstance(contained, list):
        copy["contained"] = [
            item
            for item in contained
            if not (isinstance(item, dict) and item.get("resourceType") in _IDENTIFYING_CONTAINED)
        ]
    subject = copy.get("subject")
    if isinstance(subject, dict) and "display" in subject:
        copy["subject"] = {key: value for key, value in subject.items() if key != "display"}
    return copy
