"""The HTTP API without infrastructure (in-memory store): INTERFACES §2 answers, tokens, limits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
import pytest_asyncio
from fastapi import FastAPI
from pydantic import SecretStr

from ingest_service.builders import MemoryStore, memory_ingestion, oru
from services.ingest.http_api import STORE_ATTEMPTS, create_api

ADMIN, HL7_TOKEN, RECORDS_TOKEN = "admin-token-0123456789", "hl7-token-0123456789", "records-token-0123456789"
LB = {
    "DOMAIN": "LB",
    "STUDYID": "ANAKINRA-AD",
    "USUBJID": "AD-001",
    "RECID": "LB-1",
    "LBTESTCD": "NEUT",
    "LBORRES": "0.8",
    "LBORRESU": "10^9/L",
    "LBORNRLO": "1.8",
    "LBORNRHI": "8.0",
    "LBDTC": "2026-03-02T08:00:00",
}


def ndjson(*records: object) -> bytes:
    return b"\n".join(orjson.dumps(record) for record in records) + b"\n"


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest_asyncio.fixture(loop_scope="session")
async def client(store: MemoryStore) -> AsyncIterator[httpx.AsyncClient]:
    ingestion, _ = memory_ingestion(store)
    admin = SecretStr(ADMIN)
    tokens = {"hl7": [SecretStr(HL7_TOKEN), admin], "fhir": [admin], "records": [SecretStr(RECORDS_TOKEN), admin]}
    app = FastAPI()
    app.include_router(create_api(ingestion, tokens, max_body=64 * 1024))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as http:
        yield http


def bearer(token: str, content_type: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    return {**headers, "Content-Type": content_type} if content_type else headers


async def test_some_accepted_gives_202_with_keys_and_the_named_rejections(client: httpx.AsyncClient) -> None:
    body = ndjson(LB, {**LB, "DOMAIN": "XX"})
    response = await client.post("/v1/records", content=body, headers=bearer(RECORDS_TOKEN))
    assert response.status_code == 202
    answer = response.json()
    assert set(answer) == {"accepted", "rejected"}
    assert [key.rsplit(":", 1)[0] for key in answer["accepted"]] == ["REC:ANAKINRA-AD:LB:LB-1"]
    assert answer["rejected"] == [{"source": "request:2", "error": answer["rejected"][0]["error"]}]
    assert "DOMAIN" in answer["rejected"][0]["error"]


async def test_nothing_accepted_gives_422_problem_json_with_the_rejections(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/records", content=b"{not json\n[1]\n", headers=bearer(ADMIN))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["status"], problem["title"]) == (422, "Unprocessable Content")
    assert [item["source"] for item in problem["rejected"]] == ["request:1", "request:2"]


async def test_an_empty_body_is_a_422_naming_the_request(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/records", content=b"\n\n", headers=bearer(ADMIN))
    assert response.status_code == 422
    assert response.json()["rejected"][0]["source"] == "request"


async def test_a_resent_record_is_accepted_again_and_stored_once(client: httpx.AsyncClient, store: MemoryStore) -> None:
    for _ in range(2):
        response = await client.post("/v1/records", content=ndjson(LB), headers=bearer(ADMIN))
        assert response.status_code == 202
    assert len(store.keys) == 1


async def test_hl7_takes_many_messages_and_the_two_media_types(client: httpx.AsyncClient) -> None:
    body = oru("C-1") + oru("C-2", message_type="ADT^A01")
    for media_type in ("x-application/hl7-v2+er7", "text/plain; charset=utf-8"):
        response = await client.post("/v1/hl7", content=body, headers=bearer(HL7_TOKEN, media_type))
        assert response.status_code == 202
        assert response.json()["accepted"] == ["HL7:NIHCC-LAB:C-1"]
        assert response.json()["rejected"][0]["source"] == "request:5"


async def test_hl7_in_another_media_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/hl7", content=oru("C-1"), headers=bearer(HL7_TOKEN, "application/json"))
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"


async def test_fhir_bundle_entries_are_records(client: httpx.AsyncClient) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {"resourceType": "Patient", "id": "p1"}}, {"resource": {"resourceType": "Observation"}}],
    }
    response = await client.post("/v1/fhir", content=orjson.dumps(bundle), headers=bearer(ADMIN))
    assert response.status_code == 422
    assert [item["source"] for item in response.json()["rejected"]] == ["request:#entry[1]"]


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/v1/records", {}),
        ("/v1/records", {"Authorization": "Bearer wrong-token-0123456789"}),
        ("/v1/records", {"Authorization": f"Basic {ADMIN}"}),
        ("/v1/records", {"Authorization": f"Bearer {HL7_TOKEN}"}),
        ("/v1/fhir", {"Authorization": f"Bearer {RECORDS_TOKEN}"}),
    ],
)
async def test_without_the_route_s_token_or_the_admin_token_it_is_401(
    client: httpx.AsyncClient, path: str, headers: dict[str, str]
) -> None:
    response = await client.post(path, content=ndjson(LB), headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/records", content=b"x" * (64 * 1024 + 1), headers=bearer(ADMIN))
    assert response.status_code == 413


async def test_storage_away_is_503_with_retry_after(client: httpx.AsyncClient, store: MemoryStore) -> None:
    store.failures = STORE_ATTEMPTS
    response = await client.post("/v1/records", content=ndjson(LB), headers=bearer(ADMIN))
    assert response.status_code == 503
    assert response.headers["retry-after"]
    assert store.keys == set()


async def test_one_failed_store_is_tried_again_at_once(client: httpx.AsyncClient, store: MemoryStore) -> None:
    store.failures = 1  # e.g. a pooled connection the database dropped when it restarted
    response = await client.post("/v1/records", content=ndjson(LB), headers=bearer(ADMIN))
    assert response.status_code == 202
    assert len(response.json()["accepted"]) == 1
    assert len(store.keys) == 1
