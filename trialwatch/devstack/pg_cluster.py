"""Our own PostgreSQL cluster per stack: initdb once, pg_ctl start/stop, 127.0.0.1 only."""

from __future__ import annotations

import subprocess
from pathlib import Path

from trialwatch.devstack import pg_layout, procs
from trialwatch.devstack.console import DevstackError
from trialwatch.devstack.paths import DEPLOY_DIR
from trialwatch.devstack.pg_layout import PgLayout, as_pg, write_owned
from trialwatch.devstack.settings import Settings

HBA_FILE = DEPLOY_DIR / "postgres" / "pg_hba.conf"
CONF_TEMPLATE = DEPLOY_DIR / "postgres" / "trialwatch.conf.in"
# Only for the throw-away test stack; both survive a process crash, only an OS crash could hurt.
TEST_ONLY = "fsync = off\nfull_page_writes = off\n"


def _run(argv: list[str], what: str, stdin: str | None = None) -> str:
    proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False, cwd="/")
    if proc.returncode != 0:
        raise DevstackError(f"{what} failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def server_conf(cfg: Settings, lay: PgLayout) -> str:
    text = CONF_TEMPLATE.read_text().format(port=cfg.pg_port, socket_dir=lay.sock)
    return text + (TEST_ONLY if cfg.stack == "test" else "")


def initialized(lay: PgLayout) -> bool:
    return (lay.data / "PG_VERSION").exists()


def initdb(bindir: Path, lay: PgLayout) -> None:
    argv = [str(bindir / "initdb"), "-D", str(lay.data), "--auth-local=peer", "--auth-host=reject"]
    argv += ["--encoding=UTF8", "--locale=C", "--no-sync"]
    _run(as_pg(argv), "initdb")
    write_owned(lay.data / "pg_hba.conf", HBA_FILE.read_text())
    with (lay.data / "postgresql.conf").open("a") as conf:
        conf.write("\ninclude_if_exists = 'trialwatch.conf'\n")


def running(lay: PgLayout) -> int | None:
    """Postmaster pid from ``postmaster.pid`` if that process is alive."""
    try:
        first = (lay.data / "postmaster.pid").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    pid = int(first) if first.strip().isdigit() else None
    return pid if pid is not None and procs.alive(pid, "postgres") else None


def start(cfg: Settings) -> tuple[PgLayout, int, bool]:
    """initdb if needed, then ``pg_ctl start -w``. Returns (layout, pid, already_running)."""
    lay = pg_layout.layout(cfg)
    pid = running(lay) if initialized(lay) else None
    if pid is not None:
        return lay, pid, True
    bindir = pg_layout.bin_dir()
    pg_layout.prepare_dirs(lay)
    if not initialized(lay):
        initdb(bindir, lay)
    write_owned(lay.data / "trialwatch.conf", server_conf(cfg, lay))
    if procs.port_open("127.0.0.1", cfg.pg_port):
        raise DevstackError(f"port {cfg.pg_port} is taken by another process (TRIALWATCH_PG_PORT)")
    argv = [str(bindir / "pg_ctl"), "-D", str(lay.data), "-l", str(lay.log), "-w", "-t", "60", "start"]
    try:
        _run(as_pg(argv), "pg_ctl start")
    except DevstackError as exc:
        raise DevstackError(f"{exc}\n--- {lay.log}:\n{procs.tail(lay.log)}") from None
    pid = running(lay)
    if pid is None:
        raise DevstackError(f"postgres not running after pg_ctl start; see {lay.log}")
    return lay, pid, False


def stop(cfg: Settings, mode: str = "fast") -> str:
    """``pg_ctl stop -m fast`` (``immediate`` simulates a crash)."""
    lay = pg_layout.layout(cfg)
    pid = running(lay) if initialized(lay) else None
    if pid is None:
        return "not running"
    argv = [str(pg_layout.bin_dir() / "pg_ctl"), "-D", str(lay.data), "-m", mode, "-w", "-t", "60", "stop"]
    try:
        _run(as_pg(argv), "pg_ctl stop")
    except DevstackError:
        return f"{procs.terminate(pid, timeout=30)} (pid {pid}, pg_ctl stop failed)"
    return f"stopped (pid {pid}, -m {mode})"


def psql(cfg: Settings, lay: PgLayout, sql: str) -> str:
    """Run ``sql`` as the cluster's superuser over the private unix socket."""
    argv = [str(pg_layout.bin_dir() / "psql"), "-h", str(lay.sock), "-p", str(cfg.pg_port)]
    argv += ["-d", "postgres", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", "-"]
    return _run(as_pg(argv), "psql", stdin=sql)
