"""ingest's HTTP API (INTERFACES §2, §5): ``POST /v1/hl7``, ``/v1/fhir``, ``/v1/records``.

A request is processed record by record in one transaction: 202 with ``{"accepted": [keys],
"rejected": [{"source", "error"}]}`` when at least one record was accepted (a re-sent record is
accepted again, published once), else 422 ``application/problem+json`` with the same ``rejected``.
Each route takes its source system's bearer token or the admin token.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from services.ingest.adapters.bearer import require_bearer
from services.ingest.batch import Accepted, Outcome, Refused
from services.ingest.handlers import Ingest
from services.ingest.ports import StorageUnavailableError
from services.ingest.settings import Source
from services.ingest.units import Format, split_units
from shared.logs import get_logger

REQUEST_NAME = "request"
HL7_MEDIA_TYPES = frozenset(("x-application/hl7-v2+er7", "text/plain"))
ROUTES: tuple[tuple[str, Format, Source], ...] = (
    ("/hl7", "hl7v2", "hl7"),
    ("/fhir", "fhir", "fhir"),
    ("/records", "records", "records"),
)
RETRY_AFTER_SECONDS = "5"
#: A failed store is tried once more at once: the usual cause after a database restart is a pooled
#: connection the database dropped, which SQLAlchemy replaces (the pool does not test connections first).
STORE_ATTEMPTS = 2

log = get_logger(__name__)


class BodyTooLargeError(Exception):
    pass


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    """An RFC 9457 problem document."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def answer(outcomes: Sequence[Outcome]) -> JSONResponse:
    """202 when something was accepted, else 422 naming every rejected record."""
    accepted = [outcome.key for outcome in outcomes if isinstance(outcome, Accepted)]
    rejected = [
        {"source": outcome.source, "error": outcome.error} for outcome in outcomes if isinstance(outcome, Refused)
    ]
    if accepted:
        return JSONResponse({"accepted": accepted, "rejected": rejected}, status_code=202)
    if not rejected:
        rejected = [{"source": REQUEST_NAME, "error": f"{REQUEST_NAME}: the body holds no records"}]
    detail = f"none of the {len(rejected)} record(s) was accepted"
    return problem(422, "Unprocessable Content", detail, accepted=[], rejected=rejected)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def endpoint(ingestion: Ingest, fmt: Format, max_body: int) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def post(request: Request) -> JSONResponse:
        if fmt == "hl7v2" and _media_type(request) not in HL7_MEDIA_TYPES:
            detail = f"send HL7 v2 as {' or '.join(sorted(HL7_MEDIA_TYPES))}, not {_media_type(request)!r}"
            return problem(415, "Unsupported Media Type", detail)
        try:
            body = await read_body(request, max_body)
        except BodyTooLargeError:
            return problem(413, "Content Too Large", f"the body exceeds {max_body} bytes; send fewer records")
        for attempt in range(1, STORE_ATTEMPTS + 1):
            try:
                outcomes = await ingestion.ingest(split_units(body, fmt, REQUEST_NAME), fmt, "http")
            except StorageUnavailableError as error:  # a connection the database dropped is replaced: retried
                log.warning("http.store_failed", format=fmt, attempt=attempt, error=repr(error))
                continue
            return answer(outcomes)
        return problem(503, "Service Unavailable", "the records could not be stored; nothing was accepted")

    return post


def create_api(ingestion: Ingest, tokens: Mapping[Source, Sequence[SecretStr]], max_body: int) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["ingest"])
    for path, fmt, source in ROUTES:
        router.add_api_route(
            path,
            endpoint(ingestion, fmt, max_body),
            methods=["POST"],
            status_code=202,
            dependencies=[Depends(require_bearer(*tokens[source]))],
            name=f"post_{source}",
        )
    return router
