"""Timers that live in PostgreSQL, for real: digests of NOTIFY bursts, inhibition while a study is paused,
escalation that fires after a restart, clock reminders and the submission that publishes a REG record.
Short windows come from a test routing configuration (the shipped tree, test addresses, seconds)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient
from notifier.live_rig import NotifierRig, isolated_rig
from notifier.mail_rig import Recorder, SmtpServer
from notifier.routing_docs import address, routing_document
from notifier.signal_factory import anc2, anc3, dsmb_resume, halt, sponsor_clock
from safety_rules_service.live_rig import free_port
from sqlalchemy import text

from shared.messaging.topic_watch import TopicWatch, body_of
from trialwatch.devstack.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def smtp(recorder: Recorder) -> Iterator[SmtpServer]:
    server = SmtpServer(free_port(), recorder)
    server.start()
    yield server
    server.stop()


async def make_rig(
    request: pytest.FixtureRequest, admin: AIOKafkaAdminClient, tmp_path: Path, smtp: SmtpServer, **timing: str
) -> AsyncIterator[NotifierRig]:
    cfg: Settings = request.getfixturevalue("stack_settings")
    async with isolated_rig(cfg, admin, tmp_path, routing=routing_document(**timing), smtp_port=smtp.port) as rig:
        yield rig


async def kinds(rig: NotifierRig) -> dict[str, int]:
    return dict(await rig.rows("SELECT kind, count(*) FROM notifier.delivery WHERE status = 'DELIVERED' GROUP BY kind"))


@pytest_asyncio.fixture(loop_scope="session")
async def escalating(
    request: pytest.FixtureRequest, kafka_admin_client: AIOKafkaAdminClient, tmp_path: Path, smtp: SmtpServer
) -> AsyncIterator[NotifierRig]:
    async for rig in make_rig(request, kafka_admin_client, tmp_path, smtp, ack="8s"):
        yield rig


async def test_an_unacknowledged_alert_escalates_after_a_restart_and_an_acknowledged_one_does_not(
    escalating: NotifierRig, recorder: Recorder
) -> None:
    rig = escalating
    first = rig.start()
    ignored, acknowledged = anc3("AD-001"), anc3("AD-002")
    await rig.send_signals([ignored, acknowledged])
    await rig.eventually(lambda: _has(rig, "alert", 6), "both alerts mailed")
    acked_id = await rig.scalar("SELECT alert_id FROM notifier.alert WHERE signal_id = :s", s=acknowledged.signal_id)
    response = await rig.api("POST", f"/v1/alerts/{acked_id}/ack", "investigator", json={"comment": "dose held"})
    assert response.status_code == 200, response.text
    first.stop(signal.SIGKILL)
    assert await rig.scalar("SELECT count(*) FROM notifier.timer WHERE fired_at IS NOT NULL") == 0
    due = await rig.scalar("SELECT max(fire_at) FROM notifier.timer")
    await asyncio.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.5)  # due while the notifier is down
    rig.start()
    await rig.eventually(lambda: _has(rig, "escalation", 3 + 5), "escalation steps 1 and 2", seconds=90)
    ignored_id = await rig.scalar("SELECT alert_id FROM notifier.alert WHERE signal_id = :s", s=ignored.signal_id)
    fired = await rig.rows(
        "SELECT key, outcome FROM notifier.timer WHERE kind = 'escalation' AND fired_at IS NOT NULL ORDER BY key"
    )
    assert (f"escalation:{acked_id}:1", "skipped: acknowledged") in fired
    assert {key for key, _ in fired} == {
        f"escalation:{acked_id}:1",
        f"escalation:{ignored_id}:1",
        f"escalation:{ignored_id}:2",
    }
    step_two = {
        mail.rcpt_tos[0] for mail in recorder.received if "ESCALATION" in mail.subject and "step" not in mail.subject
    }
    assert {address("dsmb-chair"), address("sponsor-pv")} <= step_two
    escalated = await rig.rows(
        "SELECT detail->>'step' FROM notifier.audit_log WHERE action = 'alert.escalated' AND alert_id = :a",
        a=ignored_id,
    )
    assert sorted(step for (step,) in escalated) == ["1", "2"]
    assert await rig.scalar("SELECT escalation_level FROM notifier.alert WHERE alert_id = :a", a=ignored_id) == 2
    assert (await asyncio.to_thread(rig.audit_verify)).returncode == 0


async def test_a_message_lost_in_the_residual_window_is_recorded_unconfirmed_and_its_alert_still_escalates(
    escalating: NotifierRig, smtp: SmtpServer, recorder: Recorder
) -> None:
    rig = escalating
    smtp.stop()  # the e-mails wait, claimed and retried, so the crash below finds them mid-send
    first = rig.start()
    await rig.send_signals([anc3("AD-005")])

    async def attempted() -> bool:
        rows = await rig.rows("SELECT attempts FROM notifier.delivery WHERE kind = 'alert' AND status = 'PENDING'")
        return len(rows) == 3 and all(attempts >= 1 for (attempts,) in rows)

    await rig.eventually(attempted, "three e-mails attempted while SMTP is down")
    first.stop(signal.SIGKILL)
    # The one crash the design cannot tell apart: the in-doubt marker committed, the process killed before
    # the end of data left it, so the investigator's e-mail never reached the server.
    async with rig.engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE notifier.delivery SET in_doubt_since = now(), lease_until = now() "
                "WHERE kind = 'alert' AND recipient = :r"
            ),
            {"r": address("investigator")},
        )
    smtp.start()
    rig.start()

    async def escalated_and_told() -> bool:
        escalated = any("ESCALATION" in mail.subject for mail in recorder.to(address("investigator")))
        told = any("UNCONFIRMED" in mail.subject for mail in recorder.to(address("admin")))
        # The other two e-mails wait for the killed process's lease (6 s) before they are claimed again.
        pending = await rig.scalar("SELECT count(*) FROM notifier.delivery WHERE kind = 'alert' AND status = 'PENDING'")
        return escalated and told and pending == 0

    await rig.eventually(escalated_and_told, "the investigator re-notified by escalation, admin told", seconds=90)
    (lost,) = await rig.rows(
        "SELECT id, status, unconfirmed, attempts FROM notifier.delivery WHERE kind = 'alert' AND recipient = :r",
        r=address("investigator"),
    )
    assert lost.status == "DELIVERED" and "confirmation lost at crash" in lost.unconfirmed
    # Never sent again: everything the investigator received is an escalation of the alert.
    assert all("ESCALATION" in mail.subject and "AD-005" in mail.text for mail in recorder.to(address("investigator")))
    (notice,) = [m for m in recorder.to(address("admin")) if "UNCONFIRMED" in m.subject]
    assert "NOT sent again" in notice.text
    others = [m for m in recorder.received if "ESCALATION" not in m.subject and "UNCONFIRMED" not in m.subject]
    assert sorted(m.rcpt_tos[0] for m in others) == [address("medical-monitor"), address("safety-officer")]
    assert set(recorder.by_message_id().values()) == {1}


@pytest_asyncio.fixture(loop_scope="session")
async def grouping(
    request: pytest.FixtureRequest, kafka_admin_client: AIOKafkaAdminClient, tmp_path: Path, smtp: SmtpServer
) -> AsyncIterator[NotifierRig]:
    async for rig in make_rig(request, kafka_admin_client, tmp_path, smtp, digest_wait="3s"):
        yield rig


async def test_notify_bursts_become_one_digest_and_fold_into_a_pause_until_the_dsmb_resumes(
    grouping: NotifierRig, recorder: Recorder
) -> None:
    rig = grouping
    rig.start()
    await rig.send_signals([anc2("AD-001"), anc2("AD-002"), anc2("AD-003")])
    await rig.eventually(lambda: _has(rig, "digest", 2), "one digest each for the safety officer and investigator")
    digest = recorder.to(address("investigator"))
    assert len(digest) == 1 and "3 NOTIFY alert(s)" in digest[0].subject
    assert all(subject in digest[0].text for subject in ("AD-001", "AD-002", "AD-003"))

    pause = halt("H-NEUT")
    await rig.send_signals([pause])
    await rig.eventually(lambda: _has(rig, "alert", 5), "the HALT to its five receivers")
    await rig.send_signals([anc2("AD-004"), anc2("AD-005"), anc3("AD-006")])
    await rig.eventually(lambda: _has(rig, "alert", 8), "the URGENT still goes out during the pause")
    halt_id = await rig.scalar("SELECT alert_id FROM notifier.alert WHERE signal_id = :s", s=pause.signal_id)
    detail = (await rig.api("GET", f"/v1/alerts/{halt_id}", "dmc_member")).json()
    assert len(detail["folded"]) == 2, detail
    modes = dict(await rig.rows("SELECT subject_id, routing->>'mode' FROM notifier.alert WHERE rule_id = 'LAB-ANC-2'"))
    assert modes == {
        "AD-001": "digest",
        "AD-002": "digest",
        "AD-003": "digest",
        "AD-004": "inhibited",
        "AD-005": "inhibited",
    }

    await rig.send_records([dsmb_resume("H-NEUT", datetime.now(UTC))])

    async def resolved() -> bool:
        return await rig.scalar("SELECT state FROM notifier.alert WHERE alert_id = :a", a=halt_id) == "resolved"

    await rig.eventually(resolved, "the DSMB RESUME resolves the HALT alert")
    after = anc2("AD-007")
    await rig.send_signals([after])
    await rig.eventually(lambda: _has(rig, "digest", 4), "NOTIFY digests again after the resume")
    assert (
        await rig.scalar("SELECT routing->>'mode' FROM notifier.alert WHERE signal_id = :s", s=after.signal_id)
        == "digest"
    )
    folded = "SELECT alert_id FROM notifier.alert WHERE inhibited_by IS NOT NULL"
    sent_for_folded = f"SELECT count(*) FROM notifier.delivery WHERE alert_ids ?| ARRAY({folded})"
    assert await rig.scalar(sent_for_folded) == 0


@pytest_asyncio.fixture(loop_scope="session")
async def clocks(
    request: pytest.FixtureRequest, kafka_admin_client: AIOKafkaAdminClient, tmp_path: Path, smtp: SmtpServer
) -> AsyncIterator[NotifierRig]:
    async for rig in make_rig(request, kafka_admin_client, tmp_path, smtp, reminders=("4s",)):
        yield rig


async def test_a_clock_reminds_before_due_and_its_submission_publishes_a_reg_record(clocks: NotifierRig) -> None:
    rig = clocks
    rig.start()
    clock = sponsor_clock("AE-004-1", due_in=timedelta(seconds=7), now=datetime.now(UTC))
    await rig.send_signals([clock])
    await rig.eventually(lambda: _has(rig, "reminder", 3), "the reminder 4s before due, to the routed three")
    path = f"/v1/clocks/{clock.signal_id}/submitted"
    assert (await rig.api("POST", path, "investigator")).status_code == 403
    async with TopicWatch(rig.kafka, [rig.topics.records]) as watch:
        response = await rig.api("POST", path, "sponsor_pv", json={"submitted_at": "2026-03-02T20:00:00Z"})
        assert response.status_code == 202, response.text
        found = await asyncio.wait_for(watch.wait_for(rig.topics.records, lambda body: body.get("DOMAIN") == "REG"), 30)
    record = body_of(found)
    assert {k: record[k] for k in ("STUDYID", "USUBJID", "REGCLOCK", "REGAEREF", "REGDTC")} == {
        "STUDYID": "ANAKINRA-AD",
        "USUBJID": "AD-004",
        "REGCLOCK": "SPONSOR-24H",
        "REGAEREF": "AE-004-1",
        "REGDTC": "2026-03-02T20:00:00Z",
    }
    assert found.key == b"ANAKINRA-AD"
    assert (await rig.api("POST", path, "sponsor_pv")).status_code == 409
    state = await rig.scalar("SELECT state FROM notifier.alert WHERE signal_id = :s", s=clock.signal_id)
    assert state == "resolved"


async def _has(rig: NotifierRig, kind: str, count: int) -> bool:
    return (await kinds(rig)).get(kind, 0) >= count
