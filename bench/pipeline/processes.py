"""The three services as real subprocesses (`python -m services.<name>`) and their resident memory, with the
SMTP sink the notifier mails, as `make up` runs it (without it every e-mail is retried with backoff, and the
notifier's CPU in the flood measured those retries)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from services.smtp_sink.settings import default_health_port
from trialwatch.devstack import envfile, kafka, pg_layout
from trialwatch.devstack.paths import REPO_ROOT
from trialwatch.devstack.settings import Settings

SERVICE_PORTS = {
    "ingest": "TRIALWATCH_INGEST_PORT",
    "safety_rules": "TRIALWATCH_RULES_PORT",
    "notifier": "TRIALWATCH_NOTIFIER_PORT",
}
SINK = "smtp_sink"  # started beside the services; not one of them (no floor applies to it)
BENCH = "bench"  # this process: the feed and the observer
STARTUP_SECONDS = 90.0
STOP_SECONDS = 30.0


class ServiceError(RuntimeError):
    """A service did not start, or died."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def with_reaped_children(pid: int) -> float:
    """CPU seconds of a process and of its children that ended and were reaped (cutime + cstime)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


async def wait_http_healthy(process: subprocess.Popen[bytes], url: str, name: str) -> None:
    """Waits (up to 120 s) for ``url`` to answer 200, failing at once if ``process`` exits first."""
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited during startup")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url)).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{name} not healthy")


def children(parent: int) -> list[int]:
    """The processes whose parent is ``parent`` (PostgreSQL's backends and workers)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def infrastructure_pids(cfg: Settings) -> dict[str, list[int]]:
    """The stack's Kafka broker and PostgreSQL server (postmaster and its children), when run by devstack."""
    pids: dict[str, list[int]] = {}
    broker = kafka.running(cfg)
    if broker is not None:
        pids["kafka"] = [broker]
    postmaster = pg_layout.layout(cfg).data / "postmaster.pid"
    if postmaster.exists():
        first = int(postmaster.read_text().split()[0])
        pids["postgres"] = [first, *children(first)]
    return pids


def cpu_used(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
    """CPU seconds each one used between two `Services.cpu` snapshots: the sum after minus the sum before.
    PostgreSQL's backends that end in between (autovacuum workers, closed connections) are in the sum
    after through the postmaster's reaped-children time, so their CPU before the first snapshot is
    subtracted with the sum before."""
    return {name: round(sum(pids.values()) - sum(before.get(name, {}).values()), 2) for name, pids in after.items()}


def rss_mb(pid: int) -> tuple[float, float]:
    """(current RSS, peak RSS) in MB from /proc/<pid>/status (VmRSS, VmHWM)."""
    fields: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields.get("VmRSS", 0.0), fields.get("VmHWM", 0.0)


#: Issue #4's pipeline: records into ingest -> signals persisted by safety_rules.
PIPELINE = ("ingest", "safety_rules")
#: The whole system: the notifier (issue #5) reads the signals and e-mails them to the SMTP sink.
WHOLE_SYSTEM = (SINK, *SERVICE_PORTS)


class Services:
    def __init__(self, cfg: Settings, log_dir: Path, names: tuple[str, ...] = PIPELINE) -> None:
        self.cfg = cfg
        self.log_dir = log_dir
        self.names = names
        self.env = {**os.environ, envfile.ENV_FILE_VAR: str(envfile.env_path(cfg.stack)), "PYTHONUNBUFFERED": "1"}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.peak_rss: dict[str, float] = {}

    def url(self, name: str, path: str) -> str:
        if name == SINK:
            env = self.cfg.env
            port = env.get("TRIALWATCH_SMTP_HEALTH_PORT") or default_health_port(int(env["TRIALWATCH_SMTP_PORT"]))
            return f"http://127.0.0.1:{port}{path}"
        return f"http://127.0.0.1:{self.cfg.env[SERVICE_PORTS[name]]}{path}"

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in self.names:
            with (self.log_dir / f"{name}.log").open("ab") as log:
                argv = [sys.executable, "-m", f"services.{name}"]
                self.processes[name] = subprocess.Popen(argv, env=self.env, cwd=REPO_ROOT, stdout=log, stderr=log)
        for name in self.names:
            self._wait_healthy(name)

    def _wait_healthy(self, name: str) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise ServiceError(f"{name} exited during startup; see {self.log_dir / name}.log")
            try:
                if httpx.get(self.url(name, "/healthz"), timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise ServiceError(f"{name} not healthy after {STARTUP_SECONDS:.0f}s; see {self.log_dir / name}.log")

    def check_alive(self) -> None:
        dead = [name for name, process in self.processes.items() if process.poll() is not None]
        if dead:
            raise ServiceError(f"service(s) died: {', '.join(dead)}; see {self.log_dir}")

    def sample_rss(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is None:
                current, peak = rss_mb(process.pid)
                self.peak_rss[name] = max(self.peak_rss.get(name, 0.0), current, peak)

    async def sample_rss_every(self, seconds: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.sample_rss()
            try:
                await asyncio.wait_for(stop.wait(), timeout=seconds)
            except TimeoutError:
                continue

    def cpu(self) -> dict[str, dict[int, float]]:
        """CPU seconds so far of each process of each service and of the stack's Kafka and PostgreSQL."""
        used = {name: {process.pid: cpu_seconds(process.pid)} for name, process in self.processes.items()}
        for name, pids in infrastructure_pids(self.cfg).items():
            used[name] = {pid: cpu_seconds(pid) for pid in pids}
        if "postgres" in used:  # the postmaster first: with the children it reaped
            postmaster = next(iter(used["postgres"]))
            used["postgres"][postmaster] = with_reaped_children(postmaster)
        # the benchmark's own process (the feed's clients, the observer's queries) shares the machine too
        used[BENCH] = {os.getpid(): time.process_time()}
        return used

    def metrics(self, name: str) -> str:
        return httpx.get(self.url(name, "/metrics"), timeout=5.0).text

    def stop(self) -> None:
        self.sample_rss()
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()
