"""Application services that ``up`` (without ``--infra-only``) starts after Kafka and PostgreSQL.

To add a service, append a ``Service`` to ``SERVICES``. ``argv`` and ``health_url`` may use
``{python}`` and any env-file key, e.g. ``{TRIALWATCH_INGEST_PORT}``. Each service gets the
env file's settings in its environment, logs to ``var/<stack>/log/<name>.log`` and must answer
``GET /healthz`` with 2xx. A service whose ``module`` is not importable yet is reported and skipped.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from dataclasses import dataclass

import httpx

from services.smtp_sink.settings import default_health_port
from trialwatch.devstack import procs
from trialwatch.devstack.console import DevstackError
from trialwatch.devstack.paths import REPO_ROOT
from trialwatch.devstack.settings import Settings

PID_PREFIX = "svc-"


@dataclass(frozen=True)
class Service:
    name: str
    argv: tuple[str, ...]
    health_url: str
    module: str = ""  # importable entry point; if absent the service is skipped with a warning
    startup_timeout: float = 60.0
    note: str = ""  # printed after "healthy"; may use env-file keys like argv


def _module_service(name: str, module: str, port_var: str) -> Service:
    return Service(
        name=name,
        argv=("{python}", "-m", module),
        health_url=f"http://127.0.0.1:{{{port_var}}}/healthz",
        module=module,
    )


class _SmtpSinkHealthUrl(str):
    """The sink's health URL; env files written before the sink existed lack TRIALWATCH_SMTP_HEALTH_PORT,
    which then takes the sink's own default (services/smtp_sink/settings.py)."""

    __slots__ = ()

    def format(self, /, *args: object, **env: object) -> str:
        smtp_port = int(str(env["TRIALWATCH_SMTP_PORT"]))
        env.setdefault("TRIALWATCH_SMTP_HEALTH_PORT", default_health_port(smtp_port))
        return super().format(*args, **env)


SERVICES: list[Service] = [
    _module_service("ingest", "services.ingest", "TRIALWATCH_INGEST_PORT"),
    _module_service("safety_rules", "services.safety_rules", "TRIALWATCH_RULES_PORT"),
    Service(
        name="smtp_sink",
        argv=("{python}", "-m", "services.smtp_sink"),
        health_url=_SmtpSinkHealthUrl("http://127.0.0.1:{TRIALWATCH_SMTP_HEALTH_PORT}/healthz"),
        module="services.smtp_sink",
    ),
    _module_service("notifier", "services.notifier", "TRIALWATCH_NOTIFIER_PORT"),
    Service(
        name="dashboard",
        argv=("{python}", "-m", "services.dashboard"),
        health_url="http://127.0.0.1:{TRIALWATCH_DASHBOARD_PORT}/healthz",
        module="services.dashboard",
        note="open http://127.0.0.1:{TRIALWATCH_DASHBOARD_PORT}/ and sign in with a token: "
        "python -m shared.auth prints one per role (TRIALWATCH_TOKEN in the env file: admin)",
    ),
]


def _fill(template: str, cfg: Settings) -> str:
    return template.format(python=sys.executable, **cfg.env)


def service_env(cfg: Settings) -> dict[str, str]:
    return {**os.environ, **cfg.env, "PYTHONUNBUFFERED": "1"}


def has_entry_point(svc: Service) -> bool:
    if not svc.module:
        return True
    try:
        return importlib.util.find_spec(f"{svc.module}.__main__") is not None
    except ModuleNotFoundError:
        return False


def pidfile_name(svc: Service) -> str:
    return PID_PREFIX + svc.name


def running(cfg: Settings, svc: Service) -> int | None:
    return procs.running_pid(cfg.paths.pidfile(pidfile_name(svc)))


def healthy(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2.0).is_success
    except httpx.HTTPError:
        return False


def wait_healthy(cfg: Settings, svc: Service, pid: int) -> None:
    url = _fill(svc.health_url, cfg)
    deadline = time.monotonic() + svc.startup_timeout
    while time.monotonic() < deadline:
        if healthy(url):
            return
        if not procs.alive(pid):
            log = cfg.paths.log(svc.name)
            raise DevstackError(f"{svc.name} exited during startup; {log}:\n{procs.tail(log)}")
        time.sleep(0.3)
    raise DevstackError(f"{svc.name} not healthy at {url} after {svc.startup_timeout:.0f}s")


def start(cfg: Settings, svc: Service) -> str:
    """Start ``svc`` unless it runs already; returns a one-line status."""
    pid = running(cfg, svc)
    if pid is not None:
        return f"already running (pid {pid})"
    if not has_entry_point(svc):
        return f"skipped: {svc.module}.__main__ does not exist yet"
    argv = [_fill(part, cfg) for part in svc.argv]
    pidfile = cfg.paths.pidfile(pidfile_name(svc))
    pid = procs.spawn(argv, cfg.paths.log(svc.name), pidfile, service_env(cfg), cwd=REPO_ROOT)
    wait_healthy(cfg, svc, pid)
    note = f"; {_fill(svc.note, cfg)}" if svc.note else ""
    return f"healthy (pid {pid}) {_fill(svc.health_url, cfg)}{note}"


def stop_all(cfg: Settings, timeout: float = 15.0) -> list[tuple[str, str]]:
    """Stop every service with a pid file (also ones no longer in the table)."""
    results: list[tuple[str, str]] = []
    for pidfile in sorted(cfg.paths.run_dir.glob(f"{PID_PREFIX}*.pid")):
        name = pidfile.stem.removeprefix(PID_PREFIX)
        results.append((name, procs.stop_pidfile(pidfile, timeout=timeout)))
    return results
