"""A TrialWatch service as a real subprocess on the test stack, as an operator starts it.

`python -m services.<name>` with the test stack's env file (TRIALWATCH_ENV_FILE) plus any overrides,
logging to a file; started healthy or the test fails with the log's tail. Also: migrating the test
database, counting rows, and a bounded wait.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from trialwatch.devstack import envfile, procs
from trialwatch.devstack.paths import ALEMBIC_INI, REPO_ROOT
from trialwatch.devstack.settings import Settings

PORT_VARIABLES = {
    "ingest": "TRIALWATCH_INGEST_PORT",
    "safety_rules": "TRIALWATCH_RULES_PORT",
    "notifier": "TRIALWATCH_NOTIFIER_PORT",
}
STARTUP_SECONDS = 60.0
STOP_SECONDS = 30.0


def migrate(database_url: str) -> None:
    argv = [sys.executable, "-m", "alembic", "-c", str(ALEMBIC_INI), "upgrade", "head"]
    env = {**os.environ, "DATABASE_URL": database_url}
    proc = subprocess.run(argv, env=env, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]


class ServiceProcess:
    def __init__(self, name: str, cfg: Settings, log_dir: Path, overrides: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.cfg = cfg
        self.log_path = log_dir / f"{name}.log"
        self.env = {
            **os.environ,
            envfile.ENV_FILE_VAR: str(envfile.env_path("test")),
            "PYTHONUNBUFFERED": "1",
            **(overrides or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return int(self.cfg.env[PORT_VARIABLES[self.name]])

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> None:
        if procs.port_open("127.0.0.1", self.port):
            pytest.fail(f"port {self.port} ({self.name}) is taken: stop what runs there first", pytrace=False)
        with self.log_path.open("wb") as log:
            argv = [sys.executable, "-m", f"services.{self.name}"]
            self.process = subprocess.Popen(argv, env=self.env, cwd=REPO_ROOT, stdout=log, stderr=log)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.name} exited during startup:\n{self.log()[-3000:]}", pytrace=False)
            try:
                if httpx.get(self.url("/healthz"), timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail(f"{self.name} not healthy after {STARTUP_SECONDS:.0f}s:\n{self.log()[-3000:]}", pytrace=False)

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        """Signals the process, waits, kills it if it hangs; returns its exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


async def scalar(engine: AsyncEngine, sql: str, **params: object) -> object:
    async with engine.connect() as connection:
        return (await connection.execute(text(sql), params)).scalar()


async def eventually(
    probe: Callable[[], Awaitable[bool]], what: str, service: ServiceProcess, seconds: float = 30.0
) -> None:
    """Waits until ``probe`` holds; fails naming ``what``, with the service log's tail."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await probe():
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"{what}: not within {seconds:.0f}s\n{service.log()[-3000:]}", pytrace=False)
