"""The notifier delivering for real: e-mail to a real SMTP server (aiosmtpd), signed webhooks to a real HTTP
receiver, signals from the test stack's Kafka, state in its PostgreSQL, the service as a subprocess.

Exactly-once in effect: a redelivered signal and an SMTP outage each leave every alert stored once and
every message received once per Message-ID. So does kill -9 mid-send, three times in a row: the SMTP
server (aiosmtpd, started by the test) records each message before it answers 250 and holds the answer
back, exactly the moment where a sender that dies has handed over a message it never hears about (the
old re-send after the lease doubled such messages; the point-of-no-return marker must not). An answer that
never comes (SMTP after the end of data, a webhook after the request) leaves the delivery in doubt: it is
recorded once, unconfirmed, told to the admin receivers, and never sent again.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient
from notifier.live_rig import NotifierRig, isolated_rig
from notifier.mail_rig import Recorder, SmtpServer, WebhookReceiver
from notifier.routing_docs import address, routing_document
from notifier.signal_factory import anc3
from safety_rules_service.live_rig import free_port

from shared.messaging.topic_watch import TopicWatch
from trialwatch.devstack.settings import Settings

pytestmark = pytest.mark.integration

# The shipped routing tree sends an URGENT laboratory alert (LAB-ANC-3) to these three receivers.
URGENT_RECEIVERS = ("safety-officer", "medical-monitor", "investigator")
SIGNALS = 30
ALERT_DELIVERIES = SIGNALS * len(URGENT_RECEIVERS)
KILL_AFTER = (20, 45, 70)  # messages the server stored before each kill -9 (the last one's 250 held back: in doubt)
HELD_250 = 0.4  # seconds the server holds its 250 back after storing the message
LOST_AT_CRASH = "confirmation lost at crash"


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def smtp(recorder: Recorder) -> Iterator[SmtpServer]:
    server = SmtpServer(free_port(), recorder)
    yield server
    server.stop()


@pytest.fixture
def webhook(stack_settings: Settings) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(free_port(), stack_settings.env["TRIALWATCH_HMAC_SECRET"].encode())
    receiver.start()
    yield receiver
    receiver.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def rig(
    stack_settings: Settings, kafka_admin_client: AIOKafkaAdminClient, tmp_path: Path, smtp: SmtpServer
) -> AsyncIterator[NotifierRig]:
    async with isolated_rig(
        stack_settings, kafka_admin_client, tmp_path, routing=routing_document(), smtp_port=smtp.port
    ) as rig:
        yield rig


async def statuses(rig: NotifierRig) -> dict[str, int]:
    return dict(await rig.rows("SELECT status, count(*) FROM notifier.delivery GROUP BY status"))


async def test_an_urgent_signal_is_mailed_once_to_each_routed_receiver_even_when_redelivered(
    rig: NotifierRig, smtp: SmtpServer, recorder: Recorder
) -> None:
    smtp.start()
    rig.start()
    urgent = anc3()
    await rig.send_signals([urgent, urgent])

    async def delivered() -> bool:
        return (await statuses(rig)).get("DELIVERED", 0) >= 3

    await rig.eventually(delivered, "three e-mails delivered")
    await asyncio.sleep(1.0)  # room for a second, wrong, round of sends
    assert await statuses(rig) == {"DELIVERED": 3}
    message_ids = {row[0] for row in await rig.rows("SELECT message_id FROM notifier.delivery")}
    assert recorder.by_message_id() == dict.fromkeys(message_ids, 1)
    assert {mail.rcpt_tos[0] for mail in recorder.received} == {address(name) for name in URGENT_RECEIVERS}
    mail = recorder.to(address("investigator"))[0]
    assert "LAB-ANC-3" in mail.subject and "AD-003" in mail.text and "/v1/ack/" in mail.text
    state = await rig.scalar("SELECT state FROM notifier.alert WHERE signal_id = :s", s=urgent.signal_id)
    assert state == "notified"
    assert await rig.scalar("SELECT count(*) FROM notifier.alert") == 1


async def test_an_smtp_outage_delays_mail_and_recovery_delivers_each_message_exactly_once(
    rig: NotifierRig, smtp: SmtpServer, recorder: Recorder
) -> None:
    rig.start()
    await rig.send_signals([anc3(f"AD-00{i}") for i in range(1, 5)])

    async def retrying() -> bool:
        counts = await rig.rows("SELECT count(*), min(attempts) FROM notifier.delivery WHERE status = 'PENDING'")
        return counts[0][0] == 12 and counts[0][1] >= 2

    await rig.eventually(retrying, "12 deliveries retrying while SMTP is down")
    assert recorder.received == []
    smtp.start()

    async def delivered() -> bool:
        return await statuses(rig) == {"DELIVERED": 12}

    await rig.eventually(delivered, "every delivery delivered once SMTP is back")
    await asyncio.sleep(1.0)
    received = recorder.by_message_id()
    assert len(received) == 12 and set(received.values()) == {1}, received
    assert await rig.scalar("SELECT min(attempts) FROM notifier.delivery") >= 2
    assert await rig.scalar("SELECT count(*) FROM notifier.alert WHERE state = 'notified'") == 4


async def figures_now(rig: NotifierRig) -> dict[str, int]:
    (row,) = await rig.rows(
        "SELECT count(*) FILTER (WHERE status = 'DELIVERED' AND kind = 'alert'), "
        "count(*) FILTER (WHERE status = 'PENDING'), "
        "count(*) FILTER (WHERE status = 'PENDING' AND in_doubt_since IS NOT NULL) FROM notifier.delivery"
    )
    return {"delivered": row[0], "pending": row[1], "in_doubt": row[2]}


def seconds_before_a_kill(marked_at: datetime, killed_at: list[datetime]) -> float:
    return round(min((kill - marked_at).total_seconds() for kill in killed_at if kill >= marked_at), 3)


async def test_kill_9_three_times_mid_send_every_message_arrives_once_and_no_alert_is_lost(
    rig: NotifierRig, smtp: SmtpServer, recorder: Recorder
) -> None:
    recorder.data_delay = HELD_250
    smtp.start()
    rig.extra_env |= {"TRIALWATCH_NOTIFIER_SEND_CONCURRENCY": "4", "TRIALWATCH_NOTIFIER_SEND_BATCH": "8"}
    process = rig.start()
    signals = [anc3(f"AD-{i:03d}") for i in range(SIGNALS)]
    await rig.send_signals(signals)
    kills: list[dict[str, int]] = []
    killed_at: list[datetime] = []
    for target in KILL_AFTER:

        async def mid_send(target: int = target) -> bool:
            return len(recorder.received) >= target

        await rig.eventually(mid_send, f"{target} messages stored by the server")
        process.stop(signal.SIGKILL)
        killed_at.append(await rig.scalar("SELECT clock_timestamp()"))
        at_kill = await figures_now(rig)
        at_kill["alerts"] = await rig.scalar("SELECT count(*) FROM notifier.alert")
        at_kill["received"] = len(recorder.received)
        kills.append(at_kill)
        process = rig.start()

    async def settled() -> bool:
        now = await figures_now(rig)
        return now["delivered"] == ALERT_DELIVERIES and now["pending"] == 0

    await rig.eventually(settled, "every delivery settled after the last restart", seconds=120)
    await asyncio.sleep(1.5)  # room for a wrong second send
    rows = await rig.rows(
        "SELECT id, kind, dispatch_key, recipient, message_id, status, unconfirmed, in_doubt_since "
        "FROM notifier.delivery"
    )
    received = recorder.by_message_id()
    print(f"\nkill -9 figures: {kills}")

    # Deliveries were pending at every kill, and in doubt at the kills (the server had stored messages whose
    # 250 the sender never read: the old design sent those again).
    assert all(kill["pending"] > 0 for kill in kills), kills
    assert sum(kill["in_doubt"] for kill in kills) >= len(KILL_AFTER), kills
    # No alert lost: one per signal, each routed to its three receivers, one delivery each.
    assert await rig.scalar("SELECT count(DISTINCT signal_id) FROM notifier.alert") == SIGNALS
    alert_rows = [row for row in rows if row.kind == "alert"]
    expected = {(f"signal:{s.signal_id}", address(name)) for s in signals for name in URGENT_RECEIVERS}
    assert {(row.dispatch_key, row.recipient) for row in alert_rows} == expected
    assert {row.status for row in rows} == {"DELIVERED"}
    # No second message, ever, and nothing the notifier did not queue.
    assert {mid: n for mid, n in received.items() if n > 1} == {}
    assert set(received) <= {row.message_id for row in rows}
    # Not received: only a delivery recorded as in doubt at a crash (the marker committed, the process
    # killed before the end of data left it), told to admin, with its alert's escalation still to come.
    unconfirmed = [row for row in rows if row.unconfirmed]
    missing = [row for row in rows if row.message_id not in received]
    before_kill = [
        min((k - row.in_doubt_since).total_seconds() for k in killed_at if k >= row.in_doubt_since) for row in missing
    ]
    print(f"never received: {len(missing)}, marked in doubt this many seconds before a kill: {before_kill}")
    assert all(row.unconfirmed and LOST_AT_CRASH in row.unconfirmed for row in missing), missing
    notices = {row.dispatch_key for row in rows if row.kind == "unconfirmed"}
    assert notices == {f"unconfirmed:{row.id}" for row in unconfirmed if row.kind == "alert"}
    for row in missing:
        escalation = await rig.scalar(
            "SELECT count(*) FROM notifier.timer t JOIN notifier.delivery d ON t.alert_id = d.alert_id "
            "WHERE d.id = :id AND t.kind = 'escalation' AND t.fired_at IS NULL",
            id=row.id,
        )
        assert escalation == 1, row
    audited = await rig.scalar("SELECT count(*) FROM notifier.audit_log WHERE action = 'delivery.unconfirmed'")
    assert audited == len(unconfirmed)
    verified = await asyncio.to_thread(rig.audit_verify)
    assert verified.returncode == 0, verified.stderr
    print(f"unconfirmed {len(unconfirmed)}, of which never received {len(missing)}; received once: {len(received)}")


@pytest_asyncio.fixture(loop_scope="session")
async def webhook_rig(
    stack_settings: Settings,
    kafka_admin_client: AIOKafkaAdminClient,
    tmp_path: Path,
    smtp: SmtpServer,
    webhook: WebhookReceiver,
) -> AsyncIterator[NotifierRig]:
    routing = routing_document(webhook=webhook.url)
    async with isolated_rig(stack_settings, kafka_admin_client, tmp_path, routing=routing, smtp_port=smtp.port) as rig:
        yield rig


async def test_webhooks_are_signed_and_a_permanent_failure_is_dead_lettered_and_alerted_to_admin(
    webhook_rig: NotifierRig, smtp: SmtpServer, recorder: Recorder, webhook: WebhookReceiver
) -> None:
    rig = webhook_rig
    smtp.start()
    rig.start()
    first = anc3("AD-001")
    await rig.send_signals([first])
    await rig.eventually(lambda: _delivered_count(rig, 4), "3 e-mails and 1 webhook")
    (hook,) = webhook.hooks
    assert webhook.signed(hook)
    assert hook.json["alerts"][0]["signal"]["signal_id"] == first.signal_id
    assert hook.headers["X-TrialWatch-Delivery"] == hook.json["message_id"]

    webhook.status = 410
    async with TopicWatch(rig.kafka, [rig.topics.dead_letter]) as watch:
        await rig.send_signals([anc3("AD-002")])

        async def failures_settled() -> bool:
            now = await statuses(rig)
            return now.get("FAILED", 0) == 2 and now.get("PENDING", 0) == 0

        await rig.eventually(failures_settled, "the webhook and the admin's webhook failed for good")
        dead = await watch.drain(settle=1.5)
    failed = await rig.rows("SELECT kind, receiver, attempts FROM notifier.delivery WHERE status = 'FAILED'")
    assert sorted((kind, receiver) for kind, receiver, _ in failed) == [
        ("alert", "safety-officer"),
        ("failure", "admin"),
    ]
    assert all(attempts == 1 for *_, attempts in failed)
    assert len(dead) == 2 and {d.headers["x-source"] for d in dead} == {"notifier.delivery"}
    (notice,) = recorder.to(address("admin"))
    assert "DELIVERY FAILED" in notice.subject and "410" in notice.text


async def _delivered_count(rig: NotifierRig, expected: int) -> bool:
    return (await statuses(rig)).get("DELIVERED", 0) == expected


async def delivery_rows(rig: NotifierRig) -> list[Any]:
    return await rig.rows(
        "SELECT kind, channel, receiver, status, attempts, unconfirmed, server_reply, message_id "
        "FROM notifier.delivery ORDER BY id"
    )


async def test_an_smtp_answer_that_never_comes_is_recorded_unconfirmed_and_never_sent_again(
    rig: NotifierRig, smtp: SmtpServer, recorder: Recorder
) -> None:
    recorder.data_delay = 5.0  # the server stores the message, then its 250 outlasts the SMTP timeout (2 s)
    smtp.start()
    rig.start()
    await rig.send_signals([anc3("AD-020")])

    # 3 alert e-mails in doubt, so 3 notices to admin, in doubt too (and no notice about a notice).
    await rig.eventually(lambda: _delivered_count(rig, 6), "three e-mails and three notices settled")
    await asyncio.sleep(7.0)  # past the lease (6 s): an in-doubt row must not be claimed again
    rows = await delivery_rows(rig)
    assert sorted((row.kind, row.receiver) for row in rows) == sorted(
        [("alert", name) for name in URGENT_RECEIVERS] + [("unconfirmed", "admin")] * 3
    )
    assert all(row.unconfirmed and "SMTPReadTimeoutError after the end of data" in row.unconfirmed for row in rows), (
        rows
    )
    assert all(row.attempts == 1 and row.server_reply is None for row in rows)
    assert recorder.by_message_id() == dict.fromkeys((row.message_id for row in rows), 1)
    notices = [m for m in recorder.to(address("admin")) if "UNCONFIRMED" in m.subject]
    assert len(notices) == 3 and all("NOT sent again" in m.text for m in notices)
    state = await rig.scalar("SELECT state FROM notifier.alert")
    assert state == "notified"


async def test_a_webhook_answer_that_never_comes_is_recorded_unconfirmed_and_never_sent_again(
    webhook_rig: NotifierRig, smtp: SmtpServer, recorder: Recorder, webhook: WebhookReceiver
) -> None:
    rig = webhook_rig
    webhook.delay = 5.0  # longer than the webhook timeout (1.5 s): the request is taken, the answer never read
    smtp.start()
    rig.start()
    await rig.send_signals([anc3("AD-021")])

    # 3 e-mails + 1 webhook for the alert; the webhook in doubt; its notice to admin by e-mail and webhook,
    # the webhook one in doubt as well.
    await rig.eventually(lambda: _delivered_count(rig, 6), "the alert's deliveries and the admin's notice settled")
    await asyncio.sleep(7.0)  # past the lease (6 s): an in-doubt row must not be claimed again
    rows = await delivery_rows(rig)
    in_doubt = [row for row in rows if row.unconfirmed]
    assert [(row.kind, row.channel, row.receiver) for row in in_doubt] == [
        ("alert", "webhook", "safety-officer"),
        ("unconfirmed", "webhook", "admin"),
    ]
    assert all("ReadTimeout" in row.unconfirmed and row.attempts == 1 for row in in_doubt), in_doubt
    assert sorted(hook.headers["Idempotency-Key"] for hook in webhook.hooks) == sorted(r.message_id for r in in_doubt)
    confirmed = [row for row in rows if not row.unconfirmed]
    assert len(confirmed) == 4 and all(row.server_reply for row in confirmed)
    (mail,) = [m for m in recorder.to(address("admin")) if "UNCONFIRMED" in m.subject]
    assert in_doubt[0].message_id in mail.text and "NOT sent again" in mail.text
    assert set(recorder.by_message_id().values()) == {1}
