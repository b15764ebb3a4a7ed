"""Rig for tests/integration/test_dashboard*.py: the dashboard as a real ``python -m services.dashboard``
subprocess beside the pipeline (ingest, safety_rules, notifier) of tests/integration/faults.py, on the
test stack; Debian's Chromium for the browser. Importable from tests/integration only."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
from faults import Pipeline, PipelineError

from services.notifier.adapters.auth import dev_token
from services.notifier.domain.model import Role
from trialwatch.devstack import apt, procs
from trialwatch.devstack.paths import REPO_ROOT

ARTIFACTS = REPO_ROOT / "out" / "test-artifacts" / "dashboard"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
STARTUP_SECONDS = 90.0


def chromium() -> str:
    """Debian's chromium, installed through the machine's package manager when missing (as root, like
    the devstack installs PostgreSQL): test tools cannot download a browser of their own here."""
    return apt.ensure_command("chromium", ["chromium"])


class DashboardProcess:
    def __init__(self, pipeline: Pipeline, log_dir: Path, poll_seconds: float = 1.0) -> None:
        self.pipeline = pipeline
        self.env = {**pipeline.env, "TRIALWATCH_DASHBOARD_POLL_SECONDS": str(poll_seconds)}
        self.port = int(pipeline.cfg.env["TRIALWATCH_DASHBOARD_PORT"])
        self.log_path = log_dir / "dashboard.log"
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def token(self, role: Role) -> str:
        return dev_token(self.pipeline.cfg.env["TRIALWATCH_TOKEN"], role)

    def start(self) -> None:
        if procs.port_open("127.0.0.1", self.port):
            raise PipelineError(f"port {self.port} of the dashboard is taken: stop what runs there first")
        with self.log_path.open("ab") as log:
            argv = [sys.executable, "-m", "services.dashboard"]
            self.process = subprocess.Popen(argv, env=self.env, cwd=REPO_ROOT, stdout=log, stderr=log)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PipelineError(f"dashboard exited during startup:\n{self.log()[-3000:]}")
            try:
                if httpx.get(self.url("/healthz"), timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise PipelineError(f"dashboard not healthy after {STARTUP_SECONDS:.0f}s:\n{self.log()[-3000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
