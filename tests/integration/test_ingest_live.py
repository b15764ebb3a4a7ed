"""ingest as a real subprocess on the test stack: HTTP answers, publishing once, redaction, Kafka inputs.

Asserts on ingest's side only: its tables, and what it publishes on trialwatch.events.v1 and the
dead-letter topic.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import orjson
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from harness import ServiceProcess, eventually, migrate, scalar
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.ingest.mllp.framing import FrameDecoder, frame
from shared.events import RecordIngested
from shared.messaging.broker import aiokafka_options
from shared.messaging.topic_watch import Found, TopicWatch
from shared.messaging.topics import DEAD_LETTER, EVENTS, IN_HL7, IN_RECORDS
from shared.settings import KafkaSettings
from trialwatch.devstack.settings import Settings

pytestmark = pytest.mark.integration

STUDY = "ANAKINRA-AD"
NAME, BIRTH, STREET, PHONE, SSN = (
    "Zyxwabbott^Quintessa",
    "19410229",
    "742 Evergreen Terrace",
    "(555)010-4477",
    "078-05-1120",
)
IDENTIFIERS = ("Zyxwabbott", "Quintessa", BIRTH, "1941-02-28", STREET, PHONE, SSN, "99887766")


def oru(control: str, *, message_type: str = "ORU^R01^ORU_R01", sent: str = "20260302081500") -> bytes:
    segments = [
        f"MSH|^~\\&|LIS|LIVE-LAB|TRIALWATCH|NIAID|{sent}||{message_type}|{control}|P|2.5.1",
        f"PID|1||AD-401^^^{STUDY}^SUBJ~99887766^^^HOSP^MR||{NAME}||{BIRTH}|F|||{STREET}^^Springfield^IL||{PHONE}"
        f"|||||{SSN}",
        f"OBR|1|PL-{control}|FO-{control}^LIS|57021-8^CBC^LN|||20260302080000",
        "OBX|1|NM|751-8^Neutrophils^LN||0.8|10*9/L|1.8-8.0|L|||F",
    ]
    return ("\r".join(segments) + "\r").encode()


def lab(record_id: str, **extra: object) -> dict[str, object]:
    return {
        "DOMAIN": "LB",
        "STUDYID": STUDY,
        "USUBJID": "AD-401",
        "RECID": record_id,
        "LBTESTCD": "NEUT",
        "LBORRES": "0.8",
        "LBORRESU": "10^9/L",
        "LBORNRLO": "1.8",
        "LBORNRHI": "8.0",
        "LBDTC": "2026-03-02T08:00:00",
        "LBREFID": f"SPC-{record_id}",
        **extra,
    }


def ndjson(*records: object) -> bytes:
    return b"".join(orjson.dumps(record) + b"\n" for record in records)


@pytest.fixture(scope="module")
def ingest(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    migrate(stack_settings.database_url)
    service = ServiceProcess("ingest", stack_settings, tmp_path_factory.mktemp("ingest-live"))
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def db(stack_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(stack_settings.database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def kafka(stack_settings: Settings) -> KafkaSettings:
    return KafkaSettings.from_mapping(stack_settings.env)


async def post(service: ServiceProcess, path: str, body: bytes, token: str | None, **headers: str) -> httpx.Response:
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=30.0) as client:
        return await client.post(service.url(path), content=body, headers={**auth, **headers})


async def send_mllp(cfg: Settings, *messages: bytes) -> list[str]:
    """The MSA codes of the messages' ACKs."""
    reader, writer = await asyncio.open_connection("127.0.0.1", int(cfg.env["TRIALWATCH_MLLP_PORT"]))
    writer.write(b"".join(frame(message) for message in messages))
    decoder, acks = FrameDecoder(1 << 20), []
    while len(acks) < len(messages):
        acks += [ack for ack in decoder.feed(await reader.read(65536)) if isinstance(ack, bytes)]
    writer.close()
    return [ack.decode().split("\r")[1].split("|")[1] for ack in acks]


def records_on(found: list[Found], key_prefix: str) -> list[RecordIngested]:
    return [
        RecordIngested.model_validate_json(item.value)
        for item in found
        if item.topic == EVENTS and orjson.loads(item.value).get("dedup_key", "").startswith(key_prefix)
    ]


async def test_http_answers_202_or_422_and_401_without_a_valid_token(
    ingest: ServiceProcess, stack_settings: Settings
) -> None:
    run, admin = uuid.uuid4().hex[:8], stack_settings.env["TRIALWATCH_TOKEN"]
    mixed = await post(ingest, "/v1/records", ndjson(lab(f"{run}-1"), {"DOMAIN": "LB"}), admin)
    assert mixed.status_code == 202, mixed.text
    assert [key.rsplit(":", 1)[0] for key in mixed.json()["accepted"]] == [f"REC:{STUDY}:LB:{run}-1"]
    assert mixed.json()["rejected"][0]["source"] == "request:2"
    assert "STUDYID" in mixed.json()["rejected"][0]["error"]
    none = await post(ingest, "/v1/records", b"{oops\n", admin)
    assert none.status_code == 422
    assert none.headers["content-type"] == "application/problem+json"
    assert none.json()["rejected"][0]["source"] == "request:1"
    records_token = stack_settings.env["TRIALWATCH_SOURCE_TOKEN_RECORDS"]
    assert (await post(ingest, "/v1/records", ndjson(lab(f"{run}-2")), records_token)).status_code == 202
    assert (await post(ingest, "/v1/records", ndjson(lab(f"{run}-3")), None)).status_code == 401
    fhir_token = stack_settings.env["TRIALWATCH_SOURCE_TOKEN_FHIR"]
    assert (await post(ingest, "/v1/records", ndjson(lab(f"{run}-3")), fhir_token)).status_code == 401
    hl7 = await post(ingest, "/v1/hl7", oru(f"{run}-h"), admin, **{"Content-Type": "x-application/hl7-v2+er7"})
    assert hl7.json() == {"accepted": [f"HL7:LIVE-LAB:{run}-h"], "rejected": []}


async def test_a_resent_record_is_accepted_and_published_once_in_order_with_day_0_now(
    ingest: ServiceProcess, stack_settings: Settings, kafka: KafkaSettings, db: AsyncEngine
) -> None:
    run, admin = uuid.uuid4().hex[:8], stack_settings.env["TRIALWATCH_TOKEN"]
    ordered = [lab(f"{run}-{n}") for n in range(5)]
    before = datetime.now(UTC)
    async with TopicWatch(kafka, (EVENTS,)) as watch:
        assert (await post(ingest, "/v1/records", ndjson(*ordered), admin)).status_code == 202
        for body in (ndjson(ordered[0]), ndjson(ordered[0], ordered[0])):  # re-sent, alone and twice in one request
            answer = await post(ingest, "/v1/records", body, admin)
            assert answer.status_code == 202 and answer.json()["rejected"] == []
        assert await send_mllp(stack_settings, oru(f"{run}-m"), oru(f"{run}-m", sent="20260303")) == ["AA", "AA"]
        found = await watch.drain(settle=3.0)
    after = datetime.now(UTC)
    published = records_on(found, f"REC:{STUDY}:LB:{run}-")
    assert [record.events[0].source for record in published] == [f"REC:{STUDY}:LB:{run}-{n}" for n in range(5)]
    assert len(records_on(found, f"HL7:LIVE-LAB:{run}-m")) == 1
    assert {item.key for item in found if item.topic == EVENTS} == {STUDY.encode()}
    for record in published:
        assert before <= record.received_at <= after and record.channel == "http"
        assert record.events[0].recorded_at == record.received_at, "Day 0 = ingestion time without RECEIVEDDTC"
    ledger = "SELECT count(*) FROM ingest.raw_input WHERE source_key LIKE :key"
    assert await scalar(db, ledger, key=f"REC:{STUDY}:LB:{run}-0:%") == 1


async def identifier_hits(db: AsyncEngine) -> list[str]:
    """Every text or JSON column of every ingest table that holds one of the identifiers."""
    columns_sql = (
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'ingest' "
        "AND data_type IN ('text', 'character varying', 'json', 'jsonb')"
    )
    hits: list[str] = []
    async with db.connect() as connection:
        columns = (await connection.execute(text(columns_sql))).all()
        for table, column in columns:
            for value in IDENTIFIERS:
                sql = f'SELECT count(*) FROM ingest."{table}" WHERE "{column}"::text LIKE :pattern'
                if (await connection.execute(text(sql), {"pattern": f"%{value}%"})).scalar_one():
                    hits.append(f"ingest.{table}.{column} holds {value!r}")
    assert columns, "no ingest columns found"
    return hits


async def test_identifiers_never_reach_any_ingest_table_or_the_dead_letter_topic(
    ingest: ServiceProcess, stack_settings: Settings, kafka: KafkaSettings, db: AsyncEngine
) -> None:
    run, admin = uuid.uuid4().hex[:8], stack_settings.env["TRIALWATCH_TOKEN"]
    rejected_hl7 = oru(f"{run}-r", message_type="ADT^A01")
    assert await send_mllp(stack_settings, oru(f"{run}-a"), rejected_hl7) == ["AA", "AR"]
    hl7_type = {"Content-Type": "text/plain"}
    assert (
        await post(ingest, "/v1/hl7", oru(f"{run}-b") + oru(f"{run}-c", sent="x"), admin, **hl7_type)
    ).status_code == 202
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": f"p-{run}", "name": [{"family": "Zyxwabbott"}],
                          "birthDate": "1941-02-28", "address": [{"line": [STREET]}]}},
            {"resource": {"resourceType": "Observation", "id": f"o-{run}", "status": "final",
                          "contained": [{"resourceType": "Patient", "id": "pt", "name": [{"given": ["Quintessa"]}]}],
                          "code": {"coding": [{"system": "http://loinc.org", "code": "751-8"}]},
                          "subject": {"reference": "Patient/AD-401"}, "effectiveDateTime": "2026-03-02T08:00:00Z",
                          "valueQuantity": {"value": 0.8, "code": "10*9/L"}}},
        ],
    }  # fmt: skip
    assert (await post(ingest, "/v1/fhir", orjson.dumps(bundle), admin)).status_code == 202
    record = ndjson(lab(f"{run}-d", BRTHDTC="1941-02-28"), {**lab(f"{run}-e", BRTHDTC="1941-02-28"), "DOMAIN": "X"})
    assert (await post(ingest, "/v1/records", record, admin)).status_code == 202
    async with TopicWatch(kafka, (DEAD_LETTER,)) as watch:
        await produce(kafka, IN_HL7, rejected_hl7.replace(b"-r|", b"-k|"))
        dead = await dead_letter(watch, f"{run}-k")
    assert not [value for value in IDENTIFIERS if value.encode() in dead.value], dead.value
    stored = "SELECT count(*) FROM ingest.raw_input WHERE source_key LIKE :a OR source_key LIKE :b"
    assert await scalar(db, stored, a=f"HL7:LIVE-LAB:{run}-%", b=f"%{run}-d%") == 3
    assert await identifier_hits(db) == []


async def produce(kafka: KafkaSettings, topic: str, *values: bytes) -> None:
    producer = AIOKafkaProducer(enable_idempotence=True, **aiokafka_options(kafka))
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=b"test")
    finally:
        await producer.stop()


async def dead_letter(watch: TopicWatch, marker: str, seconds: float = 30.0) -> Found:
    """The first dead letter whose reason names ``marker``."""
    async with asyncio.timeout(seconds):
        while True:
            for item in [*watch.seen, *await watch.poll()]:
                if marker in item.headers.get("x-reason", ""):
                    return item


async def test_rejected_kafka_input_lands_in_quarantine_and_on_the_dead_letter_topic(
    ingest: ServiceProcess, kafka: KafkaSettings, db: AsyncEngine
) -> None:
    run = uuid.uuid4().hex[:8]
    message = ndjson(lab(f"{run}-ok"), {**lab(f"{run}-bad"), "DOMAIN": "XYZ"})
    async with TopicWatch(kafka, (EVENTS, DEAD_LETTER)) as watch:
        await produce(kafka, IN_RECORDS, message)
        dead = await dead_letter(watch, f"{run}-bad")
        found = await watch.drain(settle=2.0)
    assert "DOMAIN" in dead.headers["x-reason"]
    assert dead.headers["x-original-topic"] == IN_RECORDS
    assert dead.headers["x-consumer-group"] == "ingest"
    assert dead.headers["x-source"].endswith(":2")
    assert orjson.loads(dead.value)["RECID"] == f"{run}-bad"
    assert len(records_on(found, f"REC:{STUDY}:LB:{run}-ok")) == 1
    assert [record.channel for record in records_on(found, f"REC:{STUDY}:LB:{run}-ok")] == ["kafka"]
    quarantined = "SELECT error FROM ingest.quarantine WHERE channel = 'kafka' AND error LIKE :key"
    assert "DOMAIN" in str(await scalar(db, quarantined, key=f"%{run}-bad%"))


async def test_metrics_count_records_by_channel_and_format_and_sample_consumer_lag(ingest: ServiceProcess) -> None:
    async def lag_sampled() -> bool:
        async with httpx.AsyncClient(timeout=5.0) as client:
            return "trialwatch_ingest_consumer_lag{" in (await client.get(ingest.url("/metrics"))).text

    await eventually(lag_sampled, "consumer lag on /metrics", ingest, seconds=20.0)
    async with httpx.AsyncClient(timeout=5.0) as client:
        metrics = (await client.get(ingest.url("/metrics"))).text
        health = await client.get(ingest.url("/healthz"))
    assert health.status_code == 200 and health.json()["status"] == "ok"
    for line in (
        'trialwatch_ingest_records_accepted_total{channel="http",format="records"}',
        'trialwatch_ingest_records_rejected_total{channel="mllp",format="hl7v2"}',
        'trialwatch_ingest_records_received_total{channel="kafka",format="records"}',
        'trialwatch_ingest_records_duplicate_total{channel="http",format="records"}',
        'trialwatch_ingest_batch_seconds_bucket{channel="http",format="fhir",le="0.5"}',
        'trialwatch_ingest_consumer_lag{partition="0",topic="trialwatch.in.records"}',
    ):
        assert line in metrics, line
