"""The env file the devstack writes is exactly what the services read; placeholder secrets are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.settings import (
    ApiTokenSettings,
    DatabaseSettings,
    KafkaSettings,
    ListenSettings,
    load_service_settings,
)
from trialwatch.devstack import envfile

VARIABLES = (
    "DATABASE_URL",
    "TRIALWATCH_KAFKA_BOOTSTRAP",
    "TRIALWATCH_TOKEN",
    "TRIALWATCH_INGEST_PORT",
    "TRIALWATCH_RULES_PORT",
    "TRIALWATCH_NOTIFIER_PORT",
    "TRIALWATCH_BIND_HOST",
    "TRIALWATCH_ENV_FILE",
)
GOOD_URL = "postgresql+asyncpg://trialwatch:s3cr3t-from-make-up@127.0.0.1:5432/trialwatch"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def generated_env_file(tmp_path: Path, stack: str) -> Path:
    path = tmp_path / f"{stack}.env"
    path.write_text(envfile.render(envfile.defaults(stack)), encoding="utf-8")
    return path


def test_services_read_the_test_stack_env_file_the_devstack_generates(tmp_path: Path) -> None:
    settings = load_service_settings("ingest", needs_token=True, env_file=generated_env_file(tmp_path, "test"))
    assert settings.kafka.bootstrap == "127.0.0.1:29092"
    assert settings.port == 28081
    assert settings.listen.port("safety_rules") == 28082
    assert settings.listen.port("notifier") == 28083
    assert settings.database.url.get_secret_value().startswith("postgresql+asyncpg://")
    assert settings.api_token is not None


def test_env_file_is_chosen_by_trialwatch_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALWATCH_ENV_FILE", str(generated_env_file(tmp_path, "dev")))
    assert ListenSettings.load().ingest_port == 8081


def test_process_environment_wins_over_the_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIALWATCH_RULES_PORT", "39999")
    assert ListenSettings.load(generated_env_file(tmp_path, "dev")).rules_port == 39999


@pytest.mark.parametrize("token", ["", "changethis", "CHANGEME", "secret", "short-token"])
def test_placeholder_or_short_api_tokens_are_refused(token: str) -> None:
    with pytest.raises(ValidationError, match="TRIALWATCH_TOKEN"):
        ApiTokenSettings.from_mapping({"TRIALWATCH_TOKEN": token})


def test_a_missing_api_token_is_refused() -> None:
    with pytest.raises(ValidationError, match="TRIALWATCH_TOKEN"):
        ApiTokenSettings.from_mapping({})


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://trialwatch:postgres@127.0.0.1:5432/trialwatch",
        "postgresql+asyncpg://trialwatch:changethis@127.0.0.1:5432/trialwatch",
        "postgresql://trialwatch:s3cr3t-from-make-up@127.0.0.1:5432/trialwatch",
    ],
)
def test_database_urls_with_placeholder_passwords_or_sync_drivers_are_refused(url: str) -> None:
    with pytest.raises(ValidationError):
        DatabaseSettings.from_mapping({"DATABASE_URL": url})


def test_database_url_is_a_secret_that_does_not_print() -> None:
    settings = DatabaseSettings.from_mapping({"DATABASE_URL": GOOD_URL})
    assert "s3cr3t" not in repr(settings)


def test_sasl_needs_a_real_password() -> None:
    base = {"TRIALWATCH_KAFKA_BOOTSTRAP": "127.0.0.1:9093", "TRIALWATCH_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}
    with pytest.raises(ValidationError, match="SASL"):
        KafkaSettings.from_mapping(base)
    complete = {
        **base,
        "TRIALWATCH_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "TRIALWATCH_KAFKA_SASL_USERNAME": "trialwatch",
    }
    with pytest.raises(ValidationError, match="placeholder"):
        KafkaSettings.from_mapping({**complete, "TRIALWATCH_KAFKA_SASL_PASSWORD": "password"})
    settings = KafkaSettings.from_mapping({**complete, "TRIALWATCH_KAFKA_SASL_PASSWORD": "a-generated-one-42"})
    assert settings.uses_sasl and settings.uses_tls
