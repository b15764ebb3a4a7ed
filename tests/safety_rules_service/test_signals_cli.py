"""`trialwatch signals` without a database: arguments, and which database it would read."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from trialwatch import signals
from trialwatch.cli import main


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T08:15:00Z", datetime(2026, 3, 1, 8, 15, tzinfo=UTC)),
        ("2026-03-01T08:15:00", datetime(2026, 3, 1, 8, 15, tzinfo=UTC)),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01T10:15:00+02:00", datetime(2026, 3, 1, 10, 15, tzinfo=timezone(timedelta(hours=2)))),
    ],
)
def test_since_is_iso_8601_and_utc_without_an_offset(text: str, expected: datetime) -> None:
    assert signals.since_time(text) == expected


def test_a_since_that_is_not_a_time_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["signals", "--since", "yesterday"])
    assert exit_info.value.code == 2
    assert "not an ISO 8601 date or time: 'yesterday'" in capsys.readouterr().err


def write_env(path: Path, stack: str, url: str) -> Path:
    path.write_text(f"TRIALWATCH_STACK={stack}\nDATABASE_URL={url}\n", encoding="utf-8")
    return path


URL = "postgresql+asyncpg://u:S3cret-long-enough@127.0.0.1:1/db"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("TRIALWATCH_STACK", "TRIALWATCH_ENV_FILE", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_env_file_named_alone_brings_its_own_stack(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("TRIALWATCH_ENV_FILE", str(write_env(tmp_path / "t.env", "test", URL)))
    assert signals.database_settings().url.get_secret_value() == URL


def test_a_stack_that_does_not_match_the_env_file_is_refused(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("TRIALWATCH_ENV_FILE", str(write_env(tmp_path / "t.env", "test", URL)))
    clean_env.setenv("TRIALWATCH_STACK", "dev")
    with pytest.raises(signals.SignalsError, match="not 'dev'"):
        signals.database_settings()


def test_database_url_in_the_environment_wins(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("TRIALWATCH_ENV_FILE", str(write_env(tmp_path / "t.env", "test", URL)))
    other = URL.replace("/db", "/elsewhere")
    clean_env.setenv("DATABASE_URL", other)
    assert signals.database_settings().url.get_secret_value() == other


def test_a_missing_env_file_is_a_usage_error_with_a_hint(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("TRIALWATCH_ENV_FILE", str(tmp_path / "absent.env"))
    clean_env.setenv("TRIALWATCH_STACK", "test")
    assert signals.run(argparse.Namespace(study=None, since=None)) == signals.EXIT_USAGE
    assert "absent.env missing" in capsys.readouterr().err


def test_an_unreachable_database_exits_1_and_says_so(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env.setenv("TRIALWATCH_ENV_FILE", str(write_env(tmp_path / "t.env", "test", URL)))
    assert signals.run(argparse.Namespace(study=None, since=None)) == signals.EXIT_FAILED
    assert "cannot read the signals" in capsys.readouterr().err
