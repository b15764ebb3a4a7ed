"""The devstack itself: env files, PostgreSQL on the test port, our broker's cluster id and topics."""

from __future__ import annotations

import os
import socket
import stat
import sys
import time
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from trialwatch import devstack
from trialwatch.devstack import envfile, kafka_admin, procs
from trialwatch.devstack.kafka_admin import ClusterInfo
from trialwatch.devstack.settings import PgTarget, Settings
from trialwatch.devstack.topics import TOPICS

pytestmark = pytest.mark.integration

DEV_DEFAULTS = {  # INTERFACES.md §5
    "TRIALWATCH_KAFKA_BOOTSTRAP": "127.0.0.1:19092",
    "TRIALWATCH_KAFKA_CONTROLLER_PORT": "19093",
    "TRIALWATCH_PG_PORT": "5432",
    "TRIALWATCH_MLLP_PORT": "2575",
    "TRIALWATCH_INGEST_PORT": "8081",
    "TRIALWATCH_RULES_PORT": "8082",
    "TRIALWATCH_NOTIFIER_PORT": "8083",
    "TRIALWATCH_DASHBOARD_PORT": "8080",
    "TRIALWATCH_SMTP_PORT": "1025",
    "TRIALWATCH_STACK": "dev",
}
SECRETS = ("TRIALWATCH_PG_PASSWORD", "TRIALWATCH_TOKEN", "TRIALWATCH_HMAC_SECRET")
#: Listens, and forks a helper that shares the listening socket and ignores SIGTERM: once the listener is
#: gone, the helper keeps the port open for another second, as a killed JVM's exiting threads do after its
#: main thread is already a zombie.
LINGERING_LISTENER = """
import os, signal, socket, time
server = socket.create_server(("127.0.0.1", {port}))
signal.signal(signal.SIGTERM, signal.SIG_IGN)
parent = os.getpid()
if os.fork() == 0:
    while os.getppid() == parent:
        time.sleep(0.02)
    time.sleep(1.0)
    os._exit(0)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
time.sleep(600)
"""


@pytest.fixture
def env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "generated.env"
    monkeypatch.setenv(envfile.ENV_FILE_VAR, str(path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return path


def ports(values: dict[str, str]) -> set[int]:
    found = {int(v) for k, v in values.items() if k.endswith("_PORT")}
    return found | {int(values["TRIALWATCH_KAFKA_BOOTSTRAP"].rsplit(":", 1)[1])}


def test_env_file_generation_is_idempotent_with_dev_defaults(env_file: Path) -> None:
    path, created = envfile.ensure("dev")
    assert (path, created) == (env_file, True)
    first = env_file.read_bytes()
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600

    assert envfile.ensure("dev") == (env_file, False)
    values = envfile.load("dev")
    assert env_file.read_bytes() == first, "an existing env file must never be rewritten"

    assert {k: values[k] for k in DEV_DEFAULTS} == DEV_DEFAULTS
    assert values["DATABASE_URL"].startswith("postgresql+asyncpg://trialwatch:")
    assert values["DATABASE_URL"].endswith("@127.0.0.1:5432/trialwatch")
    assert values["TRIALWATCH_VAR_DIR"].endswith("var/dev")
    secrets = [values[k] for k in SECRETS] + [values[f"TRIALWATCH_SOURCE_TOKEN_{s}"] for s in envfile.SOURCES]
    assert all(len(s) >= 32 for s in secrets) and len(set(secrets)) == len(secrets)


def test_test_stack_ports_do_not_collide_with_dev(env_file: Path, tmp_path: Path) -> None:
    test_values = envfile.load("test")
    dev_values = envfile.defaults("dev")
    assert test_values["TRIALWATCH_STACK"] == "test"
    assert ports(test_values).isdisjoint(ports(dev_values))
    with pytest.raises(envfile.EnvFileError, match="not 'dev'"):
        envfile.load("dev")  # the override points at a test-stack file


def test_database_url_from_environment_wins(env_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u:p@127.0.0.1:6543/elsewhere")
    assert envfile.load("dev")["DATABASE_URL"].endswith(":6543/elsewhere")
    assert envfile.external_database()


async def test_postgres_answers_on_the_test_port(stack_settings: Settings, pg_target: PgTarget) -> None:
    if not stack_settings.external_db:
        assert pg_target.port == stack_settings.pg_port == int(stack_settings.env["TRIALWATCH_PG_PORT"])
    conn = await asyncpg.connect(
        host=pg_target.host,
        port=pg_target.port,
        user=pg_target.user,
        password=pg_target.password,
        database=pg_target.database,
    )
    try:
        assert await conn.fetchval("SELECT 1") == 1
        assert await conn.fetchval("SELECT current_database()") == pg_target.database
        assert int(await conn.fetchval("SHOW port")) == pg_target.port
        assert await conn.fetchval("SELECT current_setting('password_encryption')") == "scram-sha-256"
    finally:
        await conn.close()


async def test_broker_cluster_id_is_readable(stack_settings: Settings, cluster_info: ClusterInfo) -> None:
    info = await kafka_admin.describe(stack_settings.bootstrap)
    assert info == cluster_info
    assert len(info.cluster_id) == 22 and info.broker_count == 1 and info.controller_id == 1
    meta = (stack_settings.paths.kafka_data / "meta.properties").read_text()
    assert f"cluster.id={info.cluster_id}" in meta.splitlines(), "answering broker is not this stack's"


async def test_topic_table_exists_on_the_broker(kafka_admin_client: AIOKafkaAdminClient) -> None:
    described = await kafka_admin_client.describe_topics([spec.name for spec in TOPICS])
    partitions = {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}
    assert partitions == {spec.name: spec.partitions for spec in TOPICS}


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
async def test_broker_restart_keeps_cluster_id(stack_settings: Settings, cluster_info: ClusterInfo, kill: bool) -> None:
    """The fault-test API: stop (SIGTERM, or SIGKILL as a crash) and start again at once on the same data
    dir, no reformat. The stop returns only once the broker's ports are closed (after a SIGKILL the JVM's
    threads may still hold them for a while): a start right after it must not find them taken."""
    outcome = await devstack.kafka_stop_async(stack_settings.stack, kill=kill)
    assert ("killed" if kill else "stopped") in outcome
    cfg = stack_settings
    assert not any(procs.port_open(cfg.kafka_host, port) for port in (cfg.kafka_port, cfg.controller_port))
    restarted = await devstack.kafka_start_async(stack_settings.stack)
    assert restarted.cluster_id == cluster_info.cluster_id


def test_terminate_waits_until_the_ports_are_closed(tmp_path: Path) -> None:
    """A listener whose socket outlives it by a second: `terminate` returns once the port is closed, not
    merely once the process it signalled is gone."""
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = LINGERING_LISTENER.format(port=port)
    pid = procs.spawn([sys.executable, "-c", script], tmp_path / "child.log", tmp_path / "child.pid", os.environ)
    deadline = time.monotonic() + 30
    while not procs.port_open("127.0.0.1", port):
        assert time.monotonic() < deadline and procs.alive(pid), procs.tail(tmp_path / "child.log")
        time.sleep(0.05)
    started = time.monotonic()
    assert procs.terminate(pid, timeout=10, ports=[("127.0.0.1", port)]) == "stopped"
    assert not procs.port_open("127.0.0.1", port)
    assert time.monotonic() - started >= 0.9, "the port was closed at once: the helper did not linger"


async def test_postgres_stop_and_start(stack_settings: Settings, pg_target: PgTarget) -> None:
    if stack_settings.external_db:  # an external database is never stopped by the devstack
        assert await devstack.pg_stop_async(stack_settings.stack) == "external"
        return
    assert "stopped" in await devstack.pg_stop_async(stack_settings.stack)
    with pytest.raises(OSError):
        await asyncpg.connect(host=pg_target.host, port=pg_target.port, user=pg_target.user, timeout=3)
    await devstack.pg_start_async(stack_settings.stack)
    conn = await asyncpg.connect(
        host=pg_target.host,
        port=pg_target.port,
        user=pg_target.user,
        password=pg_target.password,
        database=pg_target.database,
    )
    assert await conn.fetchval("SELECT 1") == 1
    await conn.close()
