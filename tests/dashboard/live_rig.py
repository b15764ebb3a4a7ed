"""Rig for tests/integration/test_dashboard*.py: the pipeline of tests/integration/faults.py (ingest,
safety_rules, notifier as real subprocesses on the test stack), the dashboard as a real
``python -m services.dashboard`` beside it, fed with `trialwatch send`; Debian's Chromium for the browser.
Importable from tests/integration only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from faults import Pipeline, Probe, migrated_pipeline, opened_probe
from harness import ServiceProcess

from services.notifier.domain.model import Role
from shared.auth import dev_token
from trialwatch.devstack import apt
from trialwatch.devstack.kafka_admin import ClusterInfo
from trialwatch.devstack.paths import REPO_ROOT
from trialwatch.devstack.settings import PgTarget, Settings

ARTIFACTS = REPO_ROOT / "out" / "test-artifacts" / "dashboard"
CORPUS = REPO_ROOT / "tests" / "fixtures" / "corpus"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    """Debian's chromium, installed through the machine's package manager when missing (as root, like
    the devstack installs PostgreSQL): test tools cannot download a browser of their own here."""
    return apt.ensure_command("chromium", ["chromium"])


class DashboardProcess(ServiceProcess):
    """`python -m services.dashboard` on the test stack's env file, polling for signals every second."""

    def __init__(self, pipeline: Pipeline, log_dir: Path) -> None:
        super().__init__("dashboard", pipeline.cfg, log_dir, {"TRIALWATCH_DASHBOARD_POLL_SECONDS": "1"})

    @property
    def port(self) -> int:
        return int(self.cfg.env["TRIALWATCH_DASHBOARD_PORT"])

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def token(self, role: Role) -> str:
        return dev_token(self.cfg.env["TRIALWATCH_TOKEN"], role)


@pytest.fixture(scope="module")
def pipeline(
    stack_settings: Settings,
    tmp_path_factory: pytest.TempPathFactory,
    cluster_info: ClusterInfo,
    postgres_ready: PgTarget,
) -> Iterator[Pipeline]:
    with migrated_pipeline(stack_settings, tmp_path_factory.mktemp("dashboard-pipeline")) as processes:
        yield processes


@pytest_asyncio.fixture(loop_scope="session")
async def probe(stack_settings: Settings) -> AsyncIterator[Probe]:
    async with opened_probe(stack_settings) as opened:
        yield opened


async def fresh_pipeline(pipeline: Pipeline, probe: Probe) -> None:
    """An empty pipeline (topics emptied, tables truncated), running."""
    pipeline.stop()
    await probe.reset()
    pipeline.start()


async def send(pipeline: Pipeline, *files: Path) -> None:
    """`trialwatch send` as an operator runs it; the corpus has malformed records on purpose (exit 65)."""
    process = await pipeline.cli_background("send", *map(str, files))
    _, stderr = await process.communicate()
    assert process.returncode in (0, 65), stderr.decode()[-3000:] + pipeline.logs()
