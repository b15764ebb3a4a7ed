"""Integration fixtures: the *test* stack's real Kafka and PostgreSQL (``make test`` starts them).

Settings come from ``.env.test`` (or the file named by TRIALWATCH_ENV_FILE). If the broker or the
database does not answer, every test here FAILS with a hint; nothing is ever skipped.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from trialwatch.devstack import kafka_admin, pg_setup
from trialwatch.devstack.envfile import EnvFileError
from trialwatch.devstack.kafka_admin import ClusterInfo
from trialwatch.devstack.settings import PgTarget, Settings, load_settings

STACK = "test"
START_HINT = "start it with: python -m trialwatch.devstack --stack test up --infra-only  (or `make test`)"

NewTopicFactory = Callable[..., Awaitable[str]]


@pytest.fixture(scope="session")
def stack_settings() -> Settings:
    try:
        return load_settings(STACK, create=False)
    except EnvFileError as exc:
        problem = str(exc)
    pytest.fail(f"test stack settings unavailable: {problem}\n{START_HINT}", pytrace=False)


@pytest.fixture(scope="session")
def kafka_bootstrap(stack_settings: Settings) -> str:
    return stack_settings.bootstrap


@pytest.fixture(scope="session")
def database_url(stack_settings: Settings) -> str:
    """SQLAlchemy URL (``postgresql+asyncpg://…``) of the test database."""
    return stack_settings.database_url


@pytest.fixture(scope="session")
def pg_target(stack_settings: Settings) -> PgTarget:
    return stack_settings.pg_target()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def cluster_info(kafka_bootstrap: str) -> ClusterInfo:
    try:
        return await asyncio.wait_for(kafka_admin.describe(kafka_bootstrap), timeout=15)
    except Exception as exc:  # any failure means the broker is not there: fail loudly
        problem = repr(exc)
    pytest.fail(f"Kafka not reachable at {kafka_bootstrap}: {problem}\n{START_HINT}", pytrace=False)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def postgres_ready(pg_target: PgTarget) -> PgTarget:
    try:
        await pg_setup.select_one(pg_target, connect_timeout=5)
    except Exception as exc:  # any failure means the database is not there: fail loudly
        problem = repr(exc)
    else:
        return pg_target
    where = f"{pg_target.host}:{pg_target.port}/{pg_target.database}"
    pytest.fail(f"PostgreSQL not reachable at {where}: {problem}\n{START_HINT}", pytrace=False)


@pytest.fixture(autouse=True)
def infrastructure(cluster_info: ClusterInfo, postgres_ready: PgTarget) -> None:
    """Every integration test needs both; a missing one is a failure, not a skip."""


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def kafka_admin_client(kafka_bootstrap: str, cluster_info: ClusterInfo) -> AsyncIterator[AIOKafkaAdminClient]:
    admin = kafka_admin.admin_client(kafka_bootstrap, timeout_ms=30_000)
    await admin.start()
    yield admin
    await admin.close()


def unique_name(prefix: str, label: str) -> str:
    clean = re.sub(r"[^a-zA-Z0-9._-]+", "-", label)[:60].strip("-.")
    return f"{prefix}.{clean}.{uuid.uuid4().hex[:10]}"


@pytest_asyncio.fixture(loop_scope="session")
async def new_topic(
    request: pytest.FixtureRequest, kafka_admin_client: AIOKafkaAdminClient
) -> AsyncIterator[NewTopicFactory]:
    """``await new_topic(partitions=3)`` creates a uniquely named topic, deleted after the test."""
    created: list[str] = []

    async def create(partitions: int = 1, **configs: str) -> str:
        name = unique_name("it", request.node.name)
        response = await kafka_admin_client.create_topics([NewTopic(name, partitions, 1, topic_configs=configs)])
        errors = [err for err in response.topic_errors if err[1] != 0]
        assert not errors, f"create topic {name}: {errors}"
        created.append(name)
        return name

    yield create
    if created:
        await kafka_admin_client.delete_topics(created)


@pytest.fixture
def group_id(request: pytest.FixtureRequest) -> str:
    return unique_name("it-group", request.node.name)
