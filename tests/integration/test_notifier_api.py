"""The notifier's HTTP API on a real running service: who may acknowledge (routing configuration), the
signed acknowledgement link (expiring, unforgeable), OIDC JWTs, reads for read-only roles, metrics."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from notifier.live_rig import NotifierRig, isolated_rig
from notifier.mail_rig import Recorder, SmtpServer
from notifier.routing_docs import address, routing_document
from notifier.signal_factory import anc3, halt
from safety_rules_service.live_rig import free_port

from services.notifier.domain.links import AckClaim, link_key, sign_link
from services.notifier.domain.model import Role
from shared.events import Signal
from trialwatch.devstack.settings import Settings

pytestmark = pytest.mark.integration

ISSUER, AUDIENCE = "https://idp.trial.test", "trialwatch-notifier"
LINK = re.compile(r"http://127\.0\.0\.1:\d+(/v1/ack/[A-Za-z0-9_\-=.\r\n]+)")


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def idp_key() -> rsa.RSAPrivateKey:
    return rsa_key()


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def smtp(recorder: Recorder) -> Iterator[SmtpServer]:
    server = SmtpServer(free_port(), recorder)
    server.start()
    yield server
    server.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rig(
    stack_settings: Settings,
    kafka_admin_client: AIOKafkaAdminClient,
    tmp_path_factory: pytest.TempPathFactory,
    smtp: SmtpServer,
    idp_key: rsa.RSAPrivateKey,
) -> AsyncIterator[NotifierRig]:
    tmp_path = tmp_path_factory.mktemp("notifier-api")
    pem = idp_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "idp.pem").write_bytes(pem)
    oidc = {
        "TRIALWATCH_OIDC_PUBLIC_KEY_FILE": str(tmp_path / "idp.pem"),
        "TRIALWATCH_OIDC_ISSUER": ISSUER,
        "TRIALWATCH_OIDC_AUDIENCE": AUDIENCE,
        "TRIALWATCH_OIDC_ROLES_CLAIM": "realm_access.roles",
        "TRIALWATCH_OIDC_USER_CLAIM": "email",
    }
    routing = routing_document()
    async with isolated_rig(
        stack_settings, kafka_admin_client, tmp_path, routing=routing, smtp_port=smtp.port, extra_env=oidc
    ) as rig:
        rig.start()
        yield rig


async def opened(rig: NotifierRig, signal: Signal, mailed: int) -> str:
    """Sends ``signal``, waits until ``mailed`` of its e-mails were delivered; returns its alert id."""
    await rig.send_signals([signal])

    async def delivered() -> bool:
        sql = "SELECT count(*) FROM notifier.delivery d JOIN notifier.alert a ON d.alert_id = a.alert_id "
        sql += "WHERE a.signal_id = :s AND d.status = 'DELIVERED'"
        return await rig.scalar(sql, s=signal.signal_id) == mailed

    await rig.eventually(delivered, f"{mailed} e-mails for {signal.rule_id}")
    return str(await rig.scalar("SELECT alert_id FROM notifier.alert WHERE signal_id = :s", s=signal.signal_id))


def jwt_for(key: rsa.RSAPrivateKey, roles: list[str], *, expires_in: int = 300) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "email": "officer@trial.test", "iat": now, "exp": now + expires_in}
    return jwt.encode(claims | {"realm_access": {"roles": roles}}, key, algorithm="RS256")


async def ack(rig: NotifierRig, alert_id: str, role: Role | None = None, **kwargs: object) -> int:
    return (await rig.api("POST", f"/v1/alerts/{alert_id}/ack", role, **kwargs)).status_code


async def test_acknowledgement_needs_a_role_the_routing_allows_and_happens_once(rig: NotifierRig) -> None:
    alert_id = await opened(rig, anc3("AD-011"), 3)
    assert await ack(rig, alert_id) == 401
    assert await ack(rig, alert_id, headers={"Authorization": "Bearer not-a-token"}) == 401
    assert await ack(rig, alert_id, "sponsor_pv") == 403  # not routed for a lab URGENT
    assert await ack(rig, alert_id, "dmc_member") == 403  # reads only
    assert (await rig.api("GET", f"/v1/alerts/{alert_id}", "dmc_member")).status_code == 200
    assert await ack(rig, alert_id, "investigator", json={"comment": "dose held"}) == 200
    assert await ack(rig, alert_id, "safety_officer") == 409
    detail = (await rig.api("GET", f"/v1/alerts/{alert_id}", "admin")).json()
    assert detail["state"] == "acknowledged" and detail["acknowledged_by"] == "dev-investigator"
    assert detail["ack_comment"] == "dose held"
    listed = (await rig.api("GET", "/v1/alerts?state=acknowledged", "dmc_member")).json()
    assert alert_id in {alert["alert_id"] for alert in listed}


async def test_resolution_needs_a_resolving_role_and_happens_once(rig: NotifierRig) -> None:
    alert_id = await opened(rig, anc3("AD-015"), 3)
    path = f"/v1/alerts/{alert_id}/resolve"
    assert (await rig.api("POST", path, "investigator")).status_code == 403
    resolved = await rig.api("POST", path, "safety_officer", json={"comment": "repeat ANC 1.6, resumed"})
    assert resolved.status_code == 200 and resolved.json()["state"] == "resolved"
    assert (await rig.api("POST", path, "admin")).status_code == 409
    assert (await rig.api("POST", f"/v1/alerts/{alert_id}/ack", "investigator")).status_code == 409


async def test_a_halt_is_acknowledged_by_the_dsmb_chair(rig: NotifierRig) -> None:
    alert_id = await opened(rig, halt("H-DEATH"), 5)
    assert await ack(rig, alert_id, "dmc_member") == 403
    assert await ack(rig, alert_id, "dsmb_chair") == 200


async def test_the_signed_link_acknowledges_and_an_expired_or_forged_link_is_refused(
    rig: NotifierRig, recorder: Recorder, stack_settings: Settings
) -> None:
    alert_id = await opened(rig, anc3("AD-012"), 3)
    mail = next(m for m in recorder.to(address("medical-monitor")) if "AD-012" in m.text)
    text = mail.text.replace("=\r\n", "").replace("=3D", "=")
    found = LINK.search(text)
    assert found, text
    path = found.group(1).strip()
    key = link_key(stack_settings.env["TRIALWATCH_HMAC_SECRET"].encode())
    expired = sign_link(key, AckClaim(alert_id, "medical_monitor", "mm@x", datetime.now(UTC) - timedelta(seconds=1)))
    assert (await rig.api("POST", f"/v1/ack/{expired}")).status_code == 410
    assert (await rig.api("GET", f"/v1/ack/{expired}")).status_code == 410
    forged = sign_link(
        link_key(b"x" * 32), AckClaim(alert_id, "medical_monitor", "mm@x", datetime.now(UTC) + timedelta(hours=1))
    )
    assert (await rig.api("POST", f"/v1/ack/{forged}")).status_code == 403
    wrong_role = sign_link(key, AckClaim(alert_id, "sponsor_pv", "pv@x", datetime.now(UTC) + timedelta(hours=1)))
    assert (await rig.api("POST", f"/v1/ack/{wrong_role}")).status_code == 403
    page = await rig.api("GET", path)
    assert page.status_code == 200 and "<form" in page.text
    assert (await rig.api("GET", f"/v1/alerts/{alert_id}", "admin")).json()[
        "state"
    ] == "notified"  # a GET changes nothing
    accepted = await rig.api("POST", path, data={"comment": "seen"})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["acknowledged_by"] == address("medical-monitor")
    audit = await rig.rows(
        "SELECT actor, detail->>'via', detail->>'role' FROM notifier.audit_log WHERE action = 'alert.acknowledged' "
        "AND alert_id = :a",
        a=alert_id,
    )
    assert audit == [(address("medical-monitor"), "link", "medical_monitor")]


async def test_an_oidc_jwt_acknowledges_with_the_roles_of_its_claim(
    rig: NotifierRig, idp_key: rsa.RSAPrivateKey
) -> None:
    alert_id = await opened(rig, anc3("AD-013"), 3)
    path = f"/v1/alerts/{alert_id}/ack"

    async def status(token: str) -> int:
        return (await rig.api("POST", path, headers={"Authorization": f"Bearer {token}"})).status_code

    assert await status(jwt_for(idp_key, ["safety_officer"], expires_in=-10)) == 401
    assert await status(jwt_for(rsa_key(), ["safety_officer"])) == 401
    assert await status(jwt_for(idp_key, ["dmc_member"])) == 403
    assert await status(jwt_for(idp_key, ["safety_officer"])) == 200
    detail = (await rig.api("GET", f"/v1/alerts/{alert_id}", "admin")).json()
    assert detail["acknowledged_by"] == "officer@trial.test"


async def test_metrics_report_open_alerts_oldest_unacknowledged_and_deliveries_per_channel(rig: NotifierRig) -> None:
    await opened(rig, anc3("AD-014"), 3)

    async def refreshed() -> bool:
        text = (await rig.api("GET", "/metrics")).text
        return 'trialwatch_notifier_open_alerts{severity="URGENT"} 1.0' in text

    await rig.eventually(refreshed, "the metrics refresh")
    text = (await rig.api("GET", "/metrics")).text
    oldest = re.search(r'trialwatch_notifier_oldest_unacknowledged_seconds\{severity="URGENT"\} ([0-9.e+]+)', text)
    assert oldest and float(oldest.group(1)) > 0
    assert 'trialwatch_notifier_deliveries{channel="email",status="DELIVERED"}' in text
    assert 'trialwatch_notifier_delivery_attempts_total{channel="email",outcome="delivered"}' in text
