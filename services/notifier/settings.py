"""notifier's own settings: routing files, links, delivery retries, SMTP, webhooks, users and OIDC.

Read like every fragment (process environment first, then the env file). The consumer groups and the
topic prefix exist so that an isolated copy of the service (an integration test on a shared broker)
never takes partitions or records from the real one; production keeps the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from shared.messaging.retry import Backoff
from shared.messaging.topics import ALERTS, DEAD_LETTER, EVENTS, IN_RECORDS, SIGNALS
from shared.settings import REPO_ROOT, SettingsFragment, refuse_placeholder

DEFAULT_CONSUMER_GROUP = "notifier"
DEFAULT_DECISIONS_GROUP = "notifier-decisions"
MIN_SECRET_LENGTH = 32
DEV_STACKS = frozenset({"dev", "test"})


class NotifierSettings(SettingsFragment):
    routing: str | None = Field(
        default=None,
        validation_alias="TRIALWATCH_ROUTING",
        description="routing files, separated by ':' (default: every studies/*.routing.yaml)",
    )
    public_url: str | None = Field(default=None, validation_alias="TRIALWATCH_NOTIFIER_PUBLIC_URL")
    hmac_secret: SecretStr = Field(validation_alias="TRIALWATCH_HMAC_SECRET")
    consumer_group: str = Field(default=DEFAULT_CONSUMER_GROUP, validation_alias="TRIALWATCH_NOTIFIER_CONSUMER_GROUP")
    decisions_group: str = Field(
        default=DEFAULT_DECISIONS_GROUP, validation_alias="TRIALWATCH_NOTIFIER_DECISIONS_GROUP"
    )
    topic_prefix: str = Field(default="", validation_alias="TRIALWATCH_NOTIFIER_TOPIC_PREFIX")
    send_batch: int = Field(default=20, ge=1, validation_alias="TRIALWATCH_NOTIFIER_SEND_BATCH")
    send_concurrency: int = Field(default=4, ge=1, validation_alias="TRIALWATCH_NOTIFIER_SEND_CONCURRENCY")
    max_attempts: int = Field(default=20, ge=1, validation_alias="TRIALWATCH_NOTIFIER_MAX_ATTEMPTS")
    retry_first: float = Field(default=2.0, gt=0, validation_alias="TRIALWATCH_NOTIFIER_RETRY_FIRST")
    retry_cap: float = Field(default=300.0, gt=0, validation_alias="TRIALWATCH_NOTIFIER_RETRY_CAP")
    lease_seconds: float = Field(default=60.0, gt=0, validation_alias="TRIALWATCH_NOTIFIER_LEASE_SECONDS")
    poll_interval: float = Field(
        default=10.0,
        gt=0,
        validation_alias="TRIALWATCH_NOTIFIER_POLL_INTERVAL",
        description="the longest the sender and scheduler sleep: they are woken by the notifier's commits and "
        "sleep until the next delivery or timer is due; this bounds the wait for work another process made",
    )
    metrics_interval: float = Field(default=5.0, gt=0, validation_alias="TRIALWATCH_NOTIFIER_METRICS_INTERVAL")
    webhook_timeout: float = Field(default=10.0, gt=0, validation_alias="TRIALWATCH_WEBHOOK_TIMEOUT")
    users_file: Path | None = Field(default=None, validation_alias="TRIALWATCH_USERS_FILE")
    dev_users: bool | None = Field(default=None, validation_alias="TRIALWATCH_NOTIFIER_DEV_USERS")
    stack: str | None = Field(default=None, validation_alias="TRIALWATCH_STACK")

    @field_validator("hmac_secret")
    @classmethod
    def _a_real_secret(cls, value: SecretStr) -> SecretStr:
        refuse_placeholder("TRIALWATCH_HMAC_SECRET", value.get_secret_value())
        if len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"TRIALWATCH_HMAC_SECRET must be at least {MIN_SECRET_LENGTH} characters")
        return value

    @property
    def routing_files(self) -> list[Path]:
        if self.routing:
            return [Path(part).expanduser() for part in self.routing.split(":") if part]
        return sorted((REPO_ROOT / "studies").glob("*.routing.yaml"))

    @property
    def derives_dev_users(self) -> bool:
        """Development users (one per role, tokens derived from TRIALWATCH_TOKEN) on the dev and test stacks."""
        return self.dev_users if self.dev_users is not None else self.stack in DEV_STACKS

    @property
    def backoff(self) -> Backoff:
        return Backoff(first=self.retry_first, cap=self.retry_cap)

    @property
    def topics(self) -> NotifierTopics:
        return NotifierTopics.with_prefix(self.topic_prefix)


class SmtpSettings(SettingsFragment):
    host: str = Field(default="127.0.0.1", validation_alias="TRIALWATCH_SMTP_HOST")
    port: int = Field(default=1025, validation_alias="TRIALWATCH_SMTP_PORT")
    starttls: bool = Field(default=False, validation_alias="TRIALWATCH_SMTP_STARTTLS")
    implicit_tls: bool = Field(default=False, validation_alias="TRIALWATCH_SMTP_TLS")
    ca_file: Path | None = Field(default=None, validation_alias="TRIALWATCH_SMTP_CA_FILE")
    username: str | None = Field(default=None, validation_alias="TRIALWATCH_SMTP_USERNAME")
    password: SecretStr | None = Field(default=None, validation_alias="TRIALWATCH_SMTP_PASSWORD")
    sender: str = Field(default="trialwatch@localhost", validation_alias="TRIALWATCH_SMTP_FROM")
    timeout: float = Field(default=15.0, gt=0, validation_alias="TRIALWATCH_SMTP_TIMEOUT")
    message_id_domain: str = Field(default="trialwatch.local", validation_alias="TRIALWATCH_SMTP_MESSAGE_ID_DOMAIN")


@dataclass(frozen=True)
class NotifierTopics:
    signals: str
    events: str
    alerts: str
    records: str
    dead_letter: str

    @classmethod
    def with_prefix(cls, prefix: str) -> NotifierTopics:
        return cls(prefix + SIGNALS, prefix + EVENTS, prefix + ALERTS, prefix + IN_RECORDS, prefix + DEAD_LETTER)
