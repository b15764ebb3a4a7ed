"""The ``up``/``down``/``reset``/``status`` commands for one stack."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import shutil
from collections.abc import Iterator

from trialwatch.devstack import (
    blocking,
    components,
    envfile,
    kafka,
    kafka_admin,
    pg_cluster,
    pg_layout,
    pg_setup,
    services,
)
from trialwatch.devstack.console import Timer, say
from trialwatch.devstack.settings import Settings, load_settings


def settings(stack: str) -> Settings:
    path, created = envfile.ensure(stack)
    if created:
        say(stack, "env", f"generated {components.rel(path)} (defaults + fresh secrets)")
    return load_settings(stack)


@contextlib.contextmanager
def exclusive(cfg: Settings) -> Iterator[None]:
    """One up/down/reset per stack at a time (a second caller waits)."""
    cfg.paths.run_dir.mkdir(parents=True, exist_ok=True)
    with (cfg.paths.run_dir / "devstack.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def up(stack: str, infra_only: bool = False) -> Settings:
    """Idempotent: starts what is not running, returns once everything answers."""
    total = Timer()
    cfg = settings(stack)
    with exclusive(cfg):
        _up(cfg, infra_only)
    scope = "infrastructure" if infra_only else "infrastructure + services"
    say(stack, "up", f"{scope} healthy", total.elapsed)
    return cfg


def _up(cfg: Settings, infra_only: bool) -> None:
    kafka_timer = Timer()
    pid, already = components.kafka_launch(cfg)
    components.pg_start(cfg)  # PostgreSQL comes up while the JVM boots
    components.kafka_wait(cfg, pid, already, kafka_timer)
    if not infra_only:
        components.services_start(cfg)


def down(stack: str) -> None:
    total = Timer()
    cfg = settings(stack)
    with exclusive(cfg):
        components.services_stop(cfg)
        components.kafka_stop(cfg)
        components.pg_stop(cfg)
    say(stack, "down", "done", total.elapsed)


def reset(stack: str) -> None:
    """Down, then delete Kafka and PostgreSQL data (logs and the env file stay)."""
    down(stack)
    cfg = settings(stack)
    targets = [cfg.paths.kafka_dir]
    if not cfg.external_db:
        targets.append(pg_layout.layout(cfg).base)
    with exclusive(cfg):
        for target in targets:
            shutil.rmtree(target, ignore_errors=True)
            say(stack, "reset", f"deleted {components.rel(target)}")


def _kafka_status(cfg: Settings) -> bool:
    pid = kafka.running(cfg)
    if pid is None:
        say(cfg.stack, "kafka", f"down ({cfg.bootstrap})")
        return False
    try:
        info = blocking.run(asyncio.wait_for(kafka_admin.describe(cfg.bootstrap), timeout=10))
    except Exception as exc:  # status must report, not crash
        say(cfg.stack, "kafka", f"pid={pid} running but not answering: {exc!r}")
        return False
    say(cfg.stack, "kafka", f"up pid={pid} cluster_id={info.cluster_id} bootstrap={cfg.bootstrap}")
    return True


def _pg_status(cfg: Settings) -> bool:
    target = cfg.pg_target()
    pid = None if cfg.external_db else pg_cluster.running(pg_layout.layout(cfg))
    where = f"{target.host}:{target.port}/{target.database}"
    try:
        blocking.run(pg_setup.select_one(target, connect_timeout=3))
    except Exception as exc:  # status must report, not crash
        say(cfg.stack, "postgres", f"down {where} (pid={pid}) {type(exc).__name__}")
        return False
    managed = "external" if cfg.external_db else f"pid={pid}"
    say(cfg.stack, "postgres", f"up {managed} {where} SELECT 1 ok")
    return True


def status(stack: str) -> bool:
    """Print each component's state. True if Kafka and PostgreSQL both answer."""
    cfg = settings(stack)
    ok = _kafka_status(cfg) & _pg_status(cfg)
    for svc in services.SERVICES:
        pid = services.running(cfg, svc)
        say(stack, svc.name, f"up pid={pid}" if pid else "down")
    return ok
