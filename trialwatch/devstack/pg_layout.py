"""Where a stack's PostgreSQL cluster lives, and how to run its tools as the ``postgres`` user."""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from trialwatch.devstack import apt
from trialwatch.devstack.console import DevstackError
from trialwatch.devstack.paths import REPO_ROOT
from trialwatch.devstack.settings import Settings

PG_OS_USER = "postgres"
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes


@dataclass(frozen=True)
class PgLayout:
    base: Path
    fallback: bool
    log: Path

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def sock(self) -> Path:
        return self.base / "run"


def as_root() -> bool:
    return os.geteuid() == 0


def as_pg(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: switch to ``postgres`` when we are root."""
    return ["runuser", "-u", PG_OS_USER, "--", *argv] if as_root() else argv


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.parent.parent.name)) or (0,)


def bin_dir() -> Path:
    """``/usr/lib/postgresql/<newest>/bin``; installs Debian's ``postgresql`` if none is found."""
    for attempt in range(2):
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=_version_key)
        if found:
            return found[-1].parent
        on_path = shutil.which("initdb")
        if on_path:
            return Path(on_path).resolve().parent
        if attempt == 0:
            apt.prevent_main_cluster()
            apt.install(["postgresql"])
    raise DevstackError("initdb not found even after installing postgresql")


def pg_can_traverse(path: Path) -> bool:
    if not as_root():
        return True
    probe = subprocess.run(as_pg(["test", "-x", str(path)]), capture_output=True, check=False)
    return probe.returncode == 0


def layout(cfg: Settings) -> PgLayout:
    preferred = cfg.paths.pg_dir
    socket_len = len(str(preferred / "run" / f".s.PGSQL.{cfg.pg_port}"))
    cfg.paths.var_dir.mkdir(parents=True, exist_ok=True)
    if socket_len <= _SOCKET_PATH_MAX and pg_can_traverse(cfg.paths.var_dir):
        return PgLayout(base=preferred, fallback=False, log=cfg.paths.log("postgres"))
    digest = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:12]
    base = Path("/var/tmp") / f"trialwatch-{digest}" / cfg.stack
    return PgLayout(base=base, fallback=True, log=base / "postgres.log")


def _chown_pg(path: Path) -> None:
    if as_root():
        user = pwd.getpwnam(PG_OS_USER)
        os.chown(path, user.pw_uid, grp.getgrgid(user.pw_gid).gr_gid)


def prepare_dirs(lay: PgLayout) -> None:
    """Create base/data/run and the log file, owned by ``postgres`` (data dir mode 0700)."""
    lay.base.mkdir(parents=True, exist_ok=True)
    os.chmod(lay.base, 0o755)
    for folder in (lay.data, lay.sock):
        folder.mkdir(exist_ok=True)
        _chown_pg(folder)
    os.chmod(lay.data, 0o700)
    lay.log.parent.mkdir(parents=True, exist_ok=True)
    lay.log.touch(exist_ok=True)
    _chown_pg(lay.log)


def write_owned(path: Path, text: str) -> None:
    path.write_text(text)
    _chown_pg(path)
