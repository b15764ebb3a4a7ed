"""The devstack itself: env files, PostgreSQL on the test port, our broker's cluster id and topics."""

from __future__ import annotations

import stat
from pathlib import Path

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from trialwatch import devstack
from trialwatch.devstack import envfile, kafka_admin
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


async def test_broker_restart_keeps_cluster_id(stack_settings: Settings, cluster_info: ClusterInfo) -> None:
    """The fault-test API: stop (SIGTERM) and start again on the same data dir, no reformat."""
    assert "stopped" in await devstack.kafka_stop_async(stack_settings.stack)
    restarted = await devstack.kafka_start_async(stack_settings.stack)
    assert restarted.cluster_id == cluster_info.cluster_id


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
