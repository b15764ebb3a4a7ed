"""Install missing system tools from Debian's packages (root only, non-interactive)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from trialwatch.devstack.console import DevstackError

_NO_MAIN_CLUSTER = Path("/etc/postgresql-common/createcluster.d/trialwatch-no-main-cluster.conf")
_updated = False


def _run(argv: list[str]) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        raise DevstackError(f"{' '.join(argv)} failed (exit {proc.returncode}):\n{tail}")


def install(packages: list[str]) -> None:
    """``apt-get update`` (once per process) then ``apt-get install -y``."""
    global _updated  # noqa: PLW0603 - one update per process is enough
    if os.geteuid() != 0:
        raise DevstackError(f"missing {', '.join(packages)}; install them (needs root): apt-get install")
    if not _updated:
        _run(["apt-get", "update", "-q"])
        _updated = True
    _run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages])


def ensure_command(command: str, packages: list[str]) -> str:
    """Path of ``command``; installs ``packages`` first if it is not on PATH."""
    found = shutil.which(command)
    if found:
        return found
    install(packages)
    found = shutil.which(command)
    if not found:
        raise DevstackError(f"{command} still missing after installing {', '.join(packages)}")
    return found


def prevent_main_cluster() -> None:
    """Debian's package would create and start a 'main' cluster on 5432; ours runs instead."""
    _NO_MAIN_CLUSTER.parent.mkdir(parents=True, exist_ok=True)
    if not _NO_MAIN_CLUSTER.exists():
        _NO_MAIN_CLUSTER.write_text("create_main_cluster = false\n")
