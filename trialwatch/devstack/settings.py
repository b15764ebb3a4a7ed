"""Typed view of one stack's env file, as the devstack needs it."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from trialwatch.devstack import envfile
from trialwatch.devstack.paths import StackPaths, stack_paths


@dataclass(frozen=True)
class PgTarget:
    host: str
    port: int
    user: str
    password: str
    database: str

    def asyncpg_dsn(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"


@dataclass(frozen=True)
class Settings:
    stack: str
    env: dict[str, str]
    paths: StackPaths
    external_db: bool

    @property
    def bootstrap(self) -> str:
        return self.env["TRIALWATCH_KAFKA_BOOTSTRAP"]

    @property
    def kafka_host(self) -> str:
        return self.bootstrap.rsplit(":", 1)[0]

    @property
    def kafka_port(self) -> int:
        return int(self.bootstrap.rsplit(":", 1)[1])

    @property
    def controller_port(self) -> int:
        return int(self.env["TRIALWATCH_KAFKA_CONTROLLER_PORT"])

    @property
    def pg_port(self) -> int:
        return int(self.env["TRIALWATCH_PG_PORT"])

    @property
    def database_url(self) -> str:
        return self.env["DATABASE_URL"]

    def pg_target(self) -> PgTarget:
        return parse_database_url(self.database_url)


def parse_database_url(url: str) -> PgTarget:
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgresql"):
        raise ValueError(f"DATABASE_URL is not a postgresql URL: {parts.scheme}://…")
    return PgTarget(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        database=parts.path.lstrip("/") or "postgres",
    )


def load_settings(stack: str, create: bool = True) -> Settings:
    env = envfile.load(stack, create=create)
    return Settings(
        stack=stack,
        env=env,
        paths=stack_paths(stack, env),
        external_db=envfile.external_database(),
    )
