"""The pipeline smoke check (`make demo` before the trial simulator): one lab record through the running stack,
shown hop by hop with timings.

An LB record (ANC 0.8 x10^9/L, CTCAE grade 3) POSTed as NDJSON to ingest (HTTP) -> its RecordIngested
on trialwatch.events.v1 -> processed by safety_rules (its processed_event row) -> a signal citing the
record on trialwatch.signals.v1 -> alert opened by notifier (its alert row). Topics are read with a
group-less consumer positioned at their end before the record is sent, so nothing is consumed on
behalf of a service. Exit 0 when the signal reached the notifier within the deadline, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import orjson
from rich.console import Console
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.app import CONSUMER_GROUP as NOTIFIER_GROUP
from services.safety_rules.app import CONSUMER_GROUP as RULES_GROUP
from shared.db import create_engine
from shared.messaging.topic_watch import Found, TopicWatch, body_of
from shared.messaging.topics import EVENTS, SIGNALS
from shared.settings import ApiTokenSettings, DatabaseSettings, KafkaSettings, ListenSettings

DEADLINE_SECONDS = 60.0
POLL_SECONDS = 0.05
STUDY_ID = "ANAKINRA-AD"

T = TypeVar("T")


class SmokeFailedError(RuntimeError):
    """A hop did not happen; the message names it."""


@dataclass(frozen=True)
class SmokeTarget:
    kafka: KafkaSettings
    database: DatabaseSettings
    ingest_url: str
    token: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SmokeTarget:
        listen = ListenSettings.from_mapping(env)
        return cls(
            kafka=KafkaSettings.from_mapping(env),
            database=DatabaseSettings.from_mapping(env),
            ingest_url=f"http://{listen.host}:{listen.ingest_port}/v1/records",
            token=ApiTokenSettings.from_mapping(env).token.get_secret_value(),
        )


def smoke_record(now: datetime) -> dict[str, Any]:
    """An ANC of 0.8 x10^9/L (CTCAE grade 3, INTERFACES §1.3 LB) under a fresh RECID: every run is new."""
    record_id = f"SMOKE-{uuid.uuid4().hex[:12]}"
    return {
        "DOMAIN": "LB",
        "STUDYID": STUDY_ID,
        "USUBJID": "AD-SMOKE",
        "RECID": record_id,
        "LBTESTCD": "NEUT",
        "LBLOINC": "751-8",
        "LBORRES": "0.8",
        "LBORRESU": "10^9/L",
        "LBORNRLO": "1.8",
        "LBORNRHI": "8.0",
        "LBDTC": now.isoformat(),
        "LBREFID": record_id,
    }


def evidence_key(record: Mapping[str, Any]) -> str:
    """The INTERFACES §3 evidence key a signal about ``record`` cites."""
    return f"REC:{record['STUDYID']}:{record['DOMAIN']}:{record['RECID']}"


class Journey:
    """Prints each hop as it happens, with the time since the record was sent."""

    def __init__(self, console: Console, deadline: float) -> None:
        self.console = console
        self.started = time.monotonic()
        self.deadline = deadline
        self.last = self.started

    def hop(self, number: int, what: str, detail: str) -> None:
        now = time.monotonic()
        total, step = now - self.started, now - self.last
        self.last = now
        self.console.print(f"  [green]✔[/] {number}. {what:<36} [cyan]{total:6.3f}s[/] [dim](+{step:.3f}s)[/]")
        self.console.print(f"       [dim]{detail}[/]")

    async def next_hop(self, waiting_for: str, hop: Awaitable[T]) -> T:
        """Awaits ``hop`` within what is left of the deadline."""
        remaining = max(0.0, self.started + self.deadline - time.monotonic())
        try:
            async with asyncio.timeout(remaining):
                return await hop
        except TimeoutError:
            raise SmokeFailedError(f"{waiting_for}: not seen within {self.deadline:.0f}s") from None


async def row_appears(engine: AsyncEngine, sql: str, params: Mapping[str, str]) -> str:
    """Polls ``sql`` until it returns a row; the row's first column, as text."""
    while True:
        async with engine.connect() as connection:
            value = (await connection.execute(text(sql), dict(params))).scalar()
        if value is not None:
            return str(value)
        await asyncio.sleep(POLL_SECONDS)


async def post_record(target: SmokeTarget, record: Mapping[str, Any]) -> str:
    """POSTs the record as NDJSON; returns the dedup key ingest accepted it under."""
    headers = {"Authorization": f"Bearer {target.token}", "Content-Type": "application/x-ndjson"}
    async with httpx.AsyncClient(timeout=10.0) as client:
        try:
            response = await client.post(target.ingest_url, content=orjson.dumps(record) + b"\n", headers=headers)
        except httpx.HTTPError as exc:
            raise SmokeFailedError(f"ingest unreachable at {target.ingest_url}: {exc!r}") from exc
    if response.status_code != 202:
        raise SmokeFailedError(f"ingest answered {response.status_code}: {response.text[:300]}")
    accepted = response.json()["accepted"]
    if len(accepted) != 1:
        raise SmokeFailedError(f"ingest accepted {accepted!r}, expected the one record")
    return str(accepted[0])


def where(found: Found) -> str:
    return f"{found.topic} partition {found.partition} offset {found.offset}"


PROCESSED_SQL = "SELECT event_id FROM safety_rules.processed_event WHERE consumer_group = :group AND event_id = :id"
ALERT_SQL = "SELECT alert_id FROM notifier.alert WHERE signal_id = :id"


async def follow(target: SmokeTarget, watch: TopicWatch, engine: AsyncEngine, journey: Journey) -> None:
    record = smoke_record(datetime.now(UTC))
    source = evidence_key(record)
    journey.console.print(f"  sending LB record {source} (ANC 0.8 x10^9/L)")
    key = await journey.next_hop("ingest's answer", post_record(target, record))
    journey.hop(1, "accepted by ingest", f"HTTP 202, {key}")
    published = watch.wait_for(EVENTS, lambda body: body.get("dedup_key") == key)
    found = await journey.next_hop(f"the record on {EVENTS}", published)
    record_id = str(body_of(found)["record_id"])
    journey.hop(2, "published by ingest's outbox", f"{where(found)}, record_id {record_id}")
    processed = row_appears(engine, PROCESSED_SQL, {"group": RULES_GROUP, "id": record_id})
    await journey.next_hop("safety_rules processing the record", processed)
    journey.hop(3, "consumed by safety_rules", f"group {RULES_GROUP}")
    raised = watch.wait_for(SIGNALS, lambda body: source in body.get("evidence", []))
    signal = await journey.next_hop(f"a signal on {SIGNALS} citing {source}", raised)
    body = body_of(signal)
    journey.hop(4, f"signal {body['rule_id']} {body['severity']} published", where(signal))
    opened = row_appears(engine, ALERT_SQL, {"id": body["signal_id"]})
    alert_id = await journey.next_hop("notifier opening an alert", opened)
    journey.hop(5, "consumed by notifier", f"group {NOTIFIER_GROUP}, alert {alert_id}")


async def smoke(target: SmokeTarget, console: Console, deadline: float) -> int:
    console.rule("[bold]TrialWatch smoke: one lab record through the live pipeline")
    journey = Journey(console, deadline)
    engine = create_engine(target.database, application_name="trialwatch-smoke")
    try:
        async with TopicWatch(target.kafka, (EVENTS, SIGNALS)) as watch:
            await follow(target, watch, engine, journey)
    except (SmokeFailedError, LookupError) as exc:
        console.print(f"  [red]✘ stopped after {time.monotonic() - journey.started:.1f}s:[/] {exc}")
        console.print("  [dim]see the service logs: var/<stack>/log/<service>.log[/]")
        return 1
    finally:
        await engine.dispose()
    console.print(f"[bold green]The record reached the notifier in {journey.last - journey.started:.3f}s.[/]")
    return 0


def run_smoke(env: Mapping[str, str], *, deadline: float = DEADLINE_SECONDS, console: Console | None = None) -> int:
    """Entry point of ``trialwatch demo``: ``env`` is the stack's settings (its env file, parsed)."""
    return asyncio.run(smoke(SmokeTarget.from_env(env), console or Console(), deadline))
