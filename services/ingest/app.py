"""ingest entrypoint: the HTTP API and the canonical events it publishes (through the outbox).

For now ``POST /v1/records`` takes one canonical event as JSON; the HL7, FHIR and NDJSON parsers
replace that body format later without changing the response shape (INTERFACES §2).
"""

from __future__ import annotations

from typing import Protocol

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from faststream.kafka import KafkaRouter
from pydantic import SecretStr, ValidationError

from services.ingest.adapters.bearer import require_bearer
from shared.events import CLINICAL_EVENT_ADAPTER, ClinicalEvent
from shared.logs import get_logger
from shared.messaging.topics import EVENTS

RECORDS_SOURCE = "http:/v1/records"
MAX_ERRORS_SHOWN = 5

log = get_logger(__name__)


class EventStore(Protocol):
    async def accept(self, event: ClinicalEvent, raw: bytes) -> bool: ...

    async def quarantine(self, source: str, error: str, raw: bytes) -> None: ...


def describe_validation(exc: ValidationError) -> str:
    """The fields at fault, e.g. ``lab.result.value: Input should be a valid decimal``."""
    problems = [
        f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors()[:MAX_ERRORS_SHOWN]
    ]
    return "; ".join(problems)


def rejected_response(error: str) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": "No record accepted",
        "status": 422,
        "accepted": [],
        "rejected": [{"source": RECORDS_SOURCE, "error": error}],
    }
    return JSONResponse(body, status_code=422, media_type="application/problem+json")


def create_api(store: EventStore, token: SecretStr) -> APIRouter:
    router = APIRouter(prefix="/v1", dependencies=[Depends(require_bearer(token))], tags=["ingest"])

    @router.post("/records", status_code=202)
    async def post_records(request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            event = CLINICAL_EVENT_ADAPTER.validate_json(raw)
        except ValidationError as exc:
            error = describe_validation(exc)
            await store.quarantine(RECORDS_SOURCE, error, raw)
            log.info("record.rejected", source=RECORDS_SOURCE, error=error)
            return rejected_response(error)
        created = await store.accept(event, raw)
        log.info("record.accepted", event_id=event.event_id, source=event.source, duplicate=not created)
        return JSONResponse({"accepted": [event.source], "rejected": []}, status_code=202)

    return router


def create_router() -> KafkaRouter:
    """ingest consumes nothing yet; its router documents what the outbox relay publishes."""
    router = KafkaRouter()
    router.publisher(
        EVENTS,
        title=f"{EVENTS}:CanonicalEvent",
        schema=ClinicalEvent,
        description="Canonical clinical events, keyed by study id; published by the outbox relay. "
        "Headers: event_id, kind, schema_version.",
    )
    return router


def documentation_router() -> KafkaRouter:
    return create_router()
