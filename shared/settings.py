"""Settings fragments, read from the process environment and then the env file.

The env file is the one named by ``TRIALWATCH_ENV_FILE`` (default ``.env`` in the repository root, written
by ``make up``); a variable set in the process environment wins over the file. Every field names its
variable explicitly so that ``grep TRIALWATCH_RULES_PORT`` finds the code that reads it. Secrets are
``SecretStr`` and are refused when empty or a well-known placeholder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
ENV_FILE_VARIABLE = "TRIALWATCH_ENV_FILE"

ServiceName = Literal["ingest", "safety_rules", "notifier"]

#: Values that appear in templates and tutorials; a deployment using one has not set its secret.
PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "admin",
        "change-me",
        "changeme",
        "changethis",
        "password",
        "postgres",
        "secret",
        "token",
        "trialwatch",
    }
)
MIN_TOKEN_LENGTH = 16


def env_file_path() -> Path:
    """The env file to read, resolved when settings are loaded (never at import)."""
    override = os.environ.get(ENV_FILE_VARIABLE)
    return Path(override).expanduser() if override else REPO_ROOT / ".env"


def refuse_placeholder(name: str, value: str) -> None:
    if value.strip().lower() in PLACEHOLDER_SECRETS:
        raise ValueError(f"{name} is empty or a placeholder; set a generated secret (`make up` writes one)")


class SettingsFragment(BaseSettings):
    """Base of every fragment: ignores the env file's other keys, immutable once loaded."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, env_file_encoding="utf-8")

    @classmethod
    def load(cls, env_file: Path | None = None) -> Self:
        """Environment first, then ``env_file`` (default: ``env_file_path()``)."""
        return cls(_env_file=env_file or env_file_path())

    @classmethod
    def from_mapping(cls, values: Mapping[str, str]) -> Self:
        """Only ``values`` (e.g. a parsed env file), ignoring the process environment."""
        return cls.model_validate(dict(values))


class KafkaSettings(SettingsFragment):
    bootstrap: str = Field(validation_alias="TRIALWATCH_KAFKA_BOOTSTRAP", min_length=3)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", validation_alias="TRIALWATCH_KAFKA_SECURITY_PROTOCOL"
    )
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, validation_alias="TRIALWATCH_KAFKA_SASL_MECHANISM"
    )
    sasl_username: str | None = Field(default=None, validation_alias="TRIALWATCH_KAFKA_SASL_USERNAME")
    sasl_password: SecretStr | None = Field(default=None, validation_alias="TRIALWATCH_KAFKA_SASL_PASSWORD")
    ssl_cafile: Path | None = Field(default=None, validation_alias="TRIALWATCH_KAFKA_SSL_CAFILE")
    ssl_certfile: Path | None = Field(default=None, validation_alias="TRIALWATCH_KAFKA_SSL_CERTFILE")
    ssl_keyfile: Path | None = Field(default=None, validation_alias="TRIALWATCH_KAFKA_SSL_KEYFILE")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in {"SSL", "SASL_SSL"}

    @model_validator(mode="after")
    def _sasl_is_complete(self) -> Self:
        if not self.uses_sasl:
            return self
        if not (self.sasl_mechanism and self.sasl_username and self.sasl_password):
            raise ValueError(f"{self.security_protocol} needs TRIALWATCH_KAFKA_SASL_MECHANISM, _USERNAME and _PASSWORD")
        refuse_placeholder("TRIALWATCH_KAFKA_SASL_PASSWORD", self.sasl_password.get_secret_value())
        return self


class DatabaseSettings(SettingsFragment):
    url: SecretStr = Field(validation_alias="DATABASE_URL")
    pool_size: int = Field(default=5, ge=1, validation_alias="TRIALWATCH_DB_POOL_SIZE")

    @field_validator("url")
    @classmethod
    def _async_postgres_with_real_password(cls, value: SecretStr) -> SecretStr:
        parts = urlsplit(value.get_secret_value())
        if parts.scheme != "postgresql+asyncpg":
            raise ValueError("DATABASE_URL must be a postgresql+asyncpg:// URL")
        if parts.password is not None:
            refuse_placeholder("the DATABASE_URL password", parts.password)
        return value


class ListenSettings(SettingsFragment):
    """Where each service serves HTTP (INTERFACES §5 defaults, all on loopback)."""

    host: str = Field(default="127.0.0.1", validation_alias="TRIALWATCH_BIND_HOST")
    ingest_port: int = Field(default=8081, validation_alias="TRIALWATCH_INGEST_PORT")
    rules_port: int = Field(default=8082, validation_alias="TRIALWATCH_RULES_PORT")
    notifier_port: int = Field(default=8083, validation_alias="TRIALWATCH_NOTIFIER_PORT")

    def port(self, service: ServiceName) -> int:
        ports: dict[ServiceName, int] = {
            "ingest": self.ingest_port,
            "safety_rules": self.rules_port,
            "notifier": self.notifier_port,
        }
        return ports[service]


class ApiTokenSettings(SettingsFragment):
    """The bearer token of the HTTP APIs (health and metrics stay open)."""

    token: SecretStr = Field(validation_alias="TRIALWATCH_TOKEN")

    @field_validator("token")
    @classmethod
    def _not_a_placeholder(cls, value: SecretStr) -> SecretStr:
        refuse_placeholder("TRIALWATCH_TOKEN", value.get_secret_value())
        if len(value.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"TRIALWATCH_TOKEN must be at least {MIN_TOKEN_LENGTH} characters")
        return value


class LogSettings(SettingsFragment):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", validation_alias="TRIALWATCH_LOG_LEVEL")


@dataclass(frozen=True)
class ServiceSettings:
    """Everything one service process needs, loaded once in its ``__main__``."""

    service: ServiceName
    kafka: KafkaSettings
    database: DatabaseSettings
    listen: ListenSettings
    log: LogSettings
    api_token: ApiTokenSettings | None

    @property
    def port(self) -> int:
        return self.listen.port(self.service)


def load_service_settings(service: ServiceName, *, needs_token: bool, env_file: Path | None = None) -> ServiceSettings:
    return ServiceSettings(
        service=service,
        kafka=KafkaSettings.load(env_file),
        database=DatabaseSettings.load(env_file),
        listen=ListenSettings.load(env_file),
        log=LogSettings.load(env_file),
        api_token=ApiTokenSettings.load(env_file) if needs_token else None,
    )
