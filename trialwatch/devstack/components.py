"""Start/stop each component with progress lines. ``stack.py`` composes these into up/down/reset."""

from __future__ import annotations

from pathlib import Path

from trialwatch.devstack import (
    blocking,
    kafka,
    kafka_admin,
    kafka_jars,
    pg_cluster,
    pg_setup,
    procs,
    services,
)
from trialwatch.devstack.console import DevstackError, Timer, say, warn
from trialwatch.devstack.kafka_admin import ClusterInfo
from trialwatch.devstack.paths import REPO_ROOT
from trialwatch.devstack.settings import Settings
from trialwatch.devstack.topics import TOPICS


def rel(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def kafka_launch(cfg: Settings) -> tuple[int, bool]:
    """Fetch jars if needed and spawn the broker unless it runs. Returns (pid, already_running)."""
    timer = Timer()
    libs, fetched = kafka_jars.ensure_libs()
    what = "fetched" if fetched else "cached"
    count = len(kafka_jars.jar_names(libs))
    say(
        cfg.stack,
        "kafka-libs",
        f"{what} {rel(libs)} ({count} jars, kafka_2.13 {kafka_jars.kafka_version(libs)})",
        timer.elapsed,
    )
    notice = kafka.port_change(cfg)
    if notice:
        warn(cfg.stack, "kafka", notice)
    pid = kafka.running(cfg)
    if pid is not None:
        return pid, True
    return kafka.launch(cfg, libs), False


def kafka_wait(cfg: Settings, pid: int, already: bool, timer: Timer) -> ClusterInfo:
    """Wait for describe_cluster, report pid + cluster id, then create the topic table."""
    try:
        info = blocking.run(kafka_admin.wait_ready(cfg.bootstrap, still_alive=lambda: procs.alive(pid)))
    except DevstackError as exc:
        log = cfg.paths.log("kafka")
        raise DevstackError(f"{exc}\n--- tail of {rel(log)}:\n{procs.tail(log)}") from None
    state = "already running" if already else "started"
    say(
        cfg.stack,
        "kafka",
        f"{state} pid={pid} cluster_id={info.cluster_id} bootstrap={cfg.bootstrap} log={rel(cfg.paths.log('kafka'))}",
        timer.elapsed,
    )
    topic_timer = Timer()
    created, _ = blocking.run(kafka_admin.create_topics(cfg.bootstrap))
    say(cfg.stack, "topics", f"{len(TOPICS)} present ({len(created)} created now)", topic_timer.elapsed)
    return info


def kafka_start(cfg: Settings) -> ClusterInfo:
    timer = Timer()
    pid, already = kafka_launch(cfg)
    return kafka_wait(cfg, pid, already, timer)


def kafka_stop(cfg: Settings, kill: bool = False) -> str:
    timer = Timer()
    result = kafka.stop(cfg, kill=kill)
    say(cfg.stack, "kafka", result, timer.elapsed)
    return result


def pg_start(cfg: Settings, migrate: bool = True) -> None:
    """Start (or reuse) our cluster, or just probe an external DATABASE_URL; then migrate (if asked)."""
    timer = Timer()
    target = cfg.pg_target()
    if cfg.external_db:
        blocking.run(pg_setup.wait_ready(target))
        say(
            cfg.stack,
            "postgres",
            f"external DATABASE_URL {target.host}:{target.port}/{target.database} (not managed here) SELECT 1 ok",
            timer.elapsed,
        )
    else:
        lay, pid, already = pg_cluster.start(cfg)
        if lay.fallback:
            warn(cfg.stack, "postgres", f"user postgres cannot use {rel(cfg.paths.pg_dir)}; data in {lay.base}")
        pg_setup.ensure_role_and_database(cfg, lay)
        blocking.run(pg_setup.wait_ready(target))
        state = "already running" if already else "started"
        say(
            cfg.stack,
            "postgres",
            f"{state} pid={pid} 127.0.0.1:{cfg.pg_port} db={target.database} data={rel(lay.data)} SELECT 1 ok",
            timer.elapsed,
        )
    if migrate:
        migrate_timer = Timer()
        say(cfg.stack, "migrations", pg_setup.migrate(cfg.database_url), migrate_timer.elapsed)


def pg_stop(cfg: Settings, mode: str = "fast") -> str:
    if cfg.external_db:
        say(cfg.stack, "postgres", "external DATABASE_URL: left alone")
        return "external"
    timer = Timer()
    result = pg_cluster.stop(cfg, mode=mode)
    say(cfg.stack, "postgres", result, timer.elapsed)
    return result


def services_start(cfg: Settings) -> None:
    for svc in services.SERVICES:
        timer = Timer()
        say(cfg.stack, svc.name, services.start(cfg, svc), timer.elapsed)


def services_stop(cfg: Settings) -> None:
    for name, result in services.stop_all(cfg):
        say(cfg.stack, name, result)
