"""STARTTLS and SMTP AUTH for real: an aiosmtpd server that refuses anything before STARTTLS and any mail
before AUTH, with a self-signed certificate made by the test and an authenticator; the notifier as a
subprocess trusting that certificate through TRIALWATCH_SMTP_CA_FILE.

A wrong password is a 535: permanent by the delivery rules (5xx, README "Configuration"), so each delivery
fails after one attempt, is dead-lettered and told to the admin receivers (whose notice fails the same way
and raises nothing further). An untrusted certificate is a connection problem: retried, nothing sent.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from notifier.live_rig import NotifierRig, isolated_rig
from notifier.mail_rig import Recorder, SmtpServer
from notifier.routing_docs import address, routing_document
from notifier.signal_factory import anc3
from safety_rules_service.live_rig import free_port

from trialwatch.devstack.settings import Settings

pytestmark = pytest.mark.integration

USER = "trialwatch-relay"
PASSWORD = "correct horse battery staple"
# The shipped routing tree sends an URGENT laboratory alert (LAB-ANC-3) to these three receivers.
URGENT_RECEIVERS = ("safety-officer", "medical-monitor", "investigator")


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, its own CA, valid for a day; (certificate, key) PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "trialwatch test smtp")])
    now = datetime.now(UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    """aiosmtpd authenticator: one user; the login is kept on the session (the recorder notes it)."""
    good = isinstance(data, LoginPassword) and data.login == USER.encode() and data.password == PASSWORD.encode()
    return AuthResult(success=good, auth_data=USER if good else None, handled=False)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    directory = tmp_path / "tls"
    directory.mkdir()
    return self_signed(directory)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder(pipelining=True)  # the envelope pipelined over STARTTLS, each reply written on its own


@pytest.fixture
def smtp(recorder: Recorder, certificate: tuple[Path, Path]) -> Iterator[SmtpServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    server = SmtpServer(
        free_port(),
        recorder,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticate,
        auth_required=True,
    )
    server.start()
    yield server
    server.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def rig(
    stack_settings: Settings,
    kafka_admin_client: AIOKafkaAdminClient,
    tmp_path: Path,
    smtp: SmtpServer,
    certificate: tuple[Path, Path],
) -> AsyncIterator[NotifierRig]:
    env = {"TRIALWATCH_SMTP_STARTTLS": "true", "TRIALWATCH_SMTP_USERNAME": USER, "TRIALWATCH_SMTP_PASSWORD": PASSWORD}
    env["TRIALWATCH_SMTP_CA_FILE"] = str(certificate[0])
    async with isolated_rig(
        stack_settings, kafka_admin_client, tmp_path, routing=routing_document(), smtp_port=smtp.port, extra_env=env
    ) as rig:
        yield rig


async def deliveries(rig: NotifierRig) -> list[Any]:
    return await rig.rows(
        "SELECT kind, receiver, status, attempts, last_error, server_reply FROM notifier.delivery ORDER BY id"
    )


async def test_mail_goes_over_starttls_with_authentication(rig: NotifierRig, recorder: Recorder) -> None:
    rig.start()
    await rig.send_signals([anc3("AD-031")])

    async def delivered() -> bool:
        rows = await deliveries(rig)
        return len(rows) == 3 and all(row.status == "DELIVERED" for row in rows)

    await rig.eventually(delivered, "three e-mails over STARTTLS")
    assert sorted(rcpt for mail in recorder.received for rcpt in mail.rcpt_tos) == sorted(
        address(name) for name in URGENT_RECEIVERS
    )
    assert all(mail.tls and mail.login == USER for mail in recorder.received), recorder.received
    assert all(row.server_reply == "250 Message accepted" for row in await deliveries(rig))


async def test_a_wrong_password_fails_each_delivery_for_good_and_tells_admin(
    rig: NotifierRig, recorder: Recorder
) -> None:
    rig.extra_env["TRIALWATCH_SMTP_PASSWORD"] = "not the password"
    rig.start()
    await rig.send_signals([anc3("AD-032")])

    async def failed() -> bool:
        rows = await deliveries(rig)
        return len(rows) == 6 and all(row.status == "FAILED" for row in rows)

    # 3 alert e-mails refused (535, permanent), so 3 notices to admin, refused the same way; none further.
    await rig.eventually(failed, "the alert's e-mails and the admin's notices failed for good")
    rows = await deliveries(rig)
    assert sorted((row.kind, row.receiver) for row in rows) == sorted(
        [("alert", name) for name in URGENT_RECEIVERS] + [("failure", "admin")] * 3
    )
    assert all(row.attempts == 1 and "SMTP 535" in row.last_error for row in rows), rows
    assert recorder.received == []
    dead = await rig.scalar("SELECT count(*) FROM notifier.outbox WHERE topic = :t", t=rig.topics.dead_letter)
    assert dead == 6
    audited = await rig.scalar("SELECT count(*) FROM notifier.audit_log WHERE action = 'delivery.failed'")
    assert audited == 6


async def test_an_untrusted_certificate_is_retried_and_nothing_is_sent(rig: NotifierRig, recorder: Recorder) -> None:
    del rig.extra_env["TRIALWATCH_SMTP_CA_FILE"]  # the system's CAs do not know the test's certificate
    rig.start()
    await rig.send_signals([anc3("AD-033")])

    async def retrying() -> bool:
        rows = await deliveries(rig)
        return len(rows) == 3 and all(row.status == "PENDING" and row.attempts >= 2 for row in rows)

    await rig.eventually(retrying, "three e-mails retrying")
    rows = await deliveries(rig)
    assert all("CERTIFICATE_VERIFY_FAILED" in (row.last_error or "") for row in rows), rows
    assert recorder.received == []
