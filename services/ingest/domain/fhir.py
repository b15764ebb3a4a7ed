"""FHIR R4 JSON documents: a single resource or a Bundle (INTERFACES §1.2, §2).

A top-level resource other than Observation, AdverseEvent or Bundle is rejected; inside a Bundle (any
type: collection, transaction, batch, ...) other resource types, Patient included, are ignored and never
stored. Identity and dedup key: `FHIR:<type>/<id>/_history/<versionId>` (a content hash without versionId).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

import orjson

from services.ingest.domain.fhir_adverse_event import adverse_event_events
from services.ingest.domain.fhir_fields import NO_SUBJECTS, identity, patient_subject, recorded_at, redacted
from services.ingest.domain.fhir_observation import observation_events
from services.ingest.domain.keys import unparseable
from services.ingest.domain.model import InputError, Parsed, ParserConfig, ParseResult, Rejected
from shared.events import Event


class Handler(Protocol):
    """Events of one accepted resource: (resource, config, dedup key, resource id, ingestion time)."""

    def __call__(
        self,
        resource: dict[str, Any],
        config: ParserConfig,
        key: str,
        resource_id: str,
        received_at: datetime | None,
        *,
        bundle_subjects: Mapping[str, str],
    ) -> list[Event]: ...


_HANDLERS: dict[str, Handler] = {"Observation": observation_events, "AdverseEvent": adverse_event_events}


def parse_fhir_document(
    document: bytes | str,
    config: ParserConfig,
    *,
    origin: str,
    entry_origin: str | None = None,
    received_at: datetime | None = None,
) -> list[ParseResult]:
    """Parse one FHIR JSON document; a Bundle gives one result per Observation/AdverseEvent entry.

    `origin` names the document (`file:line`), `entry_origin` the prefix of entry positions
    (`<entry_origin>#entry[i]`, default `origin`).
    """
    try:
        data = orjson.loads(document)
    except orjson.JSONDecodeError as error:
        return [Rejected(origin, f"FHIR document at {origin}: JSON: not valid JSON ({error})", unparseable(document))]
    return parse_fhir_json(data, config, origin=origin, entry_origin=entry_origin, received_at=received_at)


def parse_fhir_json(
    data: object,
    config: ParserConfig,
    *,
    origin: str,
    entry_origin: str | None = None,
    received_at: datetime | None = None,
) -> list[ParseResult]:
    """As `parse_fhir_document`, for JSON already decoded."""
    if not isinstance(data, dict):
        return [Rejected(origin, f"FHIR document at {origin}: resourceType: the document is not a JSON object")]
    if data.get("resourceType") == "Bundle":
        return _bundle(data, config, origin, entry_origin or origin, received_at)
    return [parse_fhir_resource(data, config, origin=origin, received_at=received_at)]


def _name(resource: dict[str, Any], origin: str) -> str:
    resource_type, resource_id = resource.get("resourceType"), resource.get("id")
    resource_type = resource_type if isinstance(resource_type, str) and resource_type else "resource"
    if isinstance(resource_id, str) and resource_id:
        return f"FHIR {resource_type}/{resource_id}"
    return f"FHIR {resource_type} at {origin}"


def parse_fhir_resource(
    resource: dict[str, Any],
    config: ParserConfig,
    *,
    origin: str,
    received_at: datetime | None = None,
    fallback_id: str | None = None,
    bundle_subjects: Mapping[str, str] = NO_SUBJECTS,
) -> ParseResult:
    """One Observation or AdverseEvent; any other resource type is rejected (INTERFACES §2).

    Inside a Bundle, `fallback_id` is the id its fullUrl gives and `bundle_subjects` the subject of each
    Patient entry by fullUrl (a `urn:uuid:` subject reference points at one)."""
    resource_type = resource.get("resourceType")
    handler = _HANDLERS.get(resource_type) if isinstance(resource_type, str) else None
    if handler is None or not isinstance(resource_type, str):
        reason = "missing" if resource_type is None else f"{resource_type!r} is not accepted"
        error = f"{_name(resource, origin)}: resourceType: {reason} (Observation, AdverseEvent or Bundle)"
        kept = {key: resource[key] for key in ("resourceType", "id") if isinstance(resource.get(key), str)}
        return Rejected(origin, error, kept)
    try:
        resource_id, key = identity(resource, resource_type, fallback_id)
        events = handler(resource, config, key, resource_id, received_at, bundle_subjects=bundle_subjects)
    except InputError as error:
        return Rejected(origin, f"{_name(resource, origin)}: {error}", redacted(resource))
    return Parsed(origin, key, events, redacted(resource) if config.keep_raw else None)


def _full_url_id(entry: dict[str, Any]) -> str | None:
    """`urn:uuid:<id>` or `.../<type>/<id>`: the id a transaction entry gives a resource without one."""
    url = entry.get("fullUrl")
    if not isinstance(url, str) or not url:
        return None
    return url.rsplit("/", 1)[-1].rsplit(":", 1)[-1] or None


def _bundle(
    bundle: dict[str, Any], config: ParserConfig, origin: str, entry_origin: str, received_at: datetime | None
) -> list[ParseResult]:
    entries = bundle.get("entry", [])
    try:
        bundle_received = recorded_at(bundle, received_at)
        if not isinstance(entries, list):
            raise InputError("entry", "expected a JSON array")
    except InputError as error:
        return [Rejected(origin, f"{_name(bundle, origin)}: {error}", {"resourceType": "Bundle"})]
    subjects = _patient_subjects(entries, config)
    results: list[ParseResult] = []
    for index, entry in enumerate(entries):
        where = f"{entry_origin}#entry[{index}]"
        if not isinstance(entry, dict):
            results.append(Rejected(where, f"{_name(bundle, origin)}: entry[{index}]: not a JSON object"))
            continue
        resource = entry.get("resource")
        if isinstance(resource, dict) and resource.get("resourceType") in _HANDLERS:
            found = parse_fhir_resource(
                resource,
                config,
                origin=where,
                received_at=bundle_received,
                fallback_id=_full_url_id(entry),
                bundle_subjects=subjects,
            )
            results.append(found)
    return results


def _patient_subjects(entries: list[Any], config: ParserConfig) -> dict[str, str]:
    """fullUrl -> USUBJID of the Bundle's Patient entries (which are never stored)."""
    subjects: dict[str, str] = {}
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        url = entry.get("fullUrl") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and resource.get("resourceType") == "Patient" and isinstance(url, str):
            subject = patient_subject(resource, config.study_ids)
            if subject is not None:
                subjects[url] = subject
    return subjects
