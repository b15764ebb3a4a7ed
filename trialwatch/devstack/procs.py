"""Background processes with pid files: spawn in a new session, probe, stop (TERM, wait, KILL)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

KILL_WAIT_SECONDS = 10.0
PORT_RELEASE_SECONDS = 30.0


def read_pid(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().splitlines()[0].strip())
    except (FileNotFoundError, ValueError, IndexError):
        return None


def read_marker(pidfile: Path) -> str:
    """Second line of a pid file: the command line it was started with (guards pid reuse)."""
    try:
        lines = pidfile.read_text().splitlines()
    except FileNotFoundError:
        return ""
    return lines[1] if len(lines) > 1 else ""


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def alive(pid: int, marker: str = "") -> bool:
    """True if ``pid`` runs and (guarding against pid reuse) its command line contains ``marker``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if is_zombie(pid):
        return False
    return marker in cmdline(pid)


def running_pid(pidfile: Path) -> int | None:
    pid = read_pid(pidfile)
    if pid is not None and alive(pid, read_marker(pidfile)):
        return pid
    return None


def spawn(argv: Sequence[str], log: Path, pidfile: Path, env: Mapping[str, str], cwd: Path | None = None) -> int:
    """Start ``argv`` detached (own session/process group), output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
    pidfile.write_text(f"{proc.pid}\n{' '.join(argv)}\n")
    return proc.pid


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        if not alive(pid):
            return True
        time.sleep(0.1)
    return not alive(pid)


def terminate(
    pid: int, timeout: float = 30.0, kill: bool = False, marker: str = "", ports: Sequence[tuple[str, int]] = ()
) -> str:
    """Stop a process group leader, then wait (bounded) until its ``ports`` are closed. Returns
    'stopped', 'killed' or 'gone'."""
    if not alive(pid, marker):
        return "gone"
    outcome = "killed"
    if not kill:
        _signal_group(pid, signal.SIGTERM)
        if wait_gone(pid, timeout):
            outcome = "stopped"
    if outcome == "killed":
        _signal_group(pid, signal.SIGKILL)
        wait_gone(pid, KILL_WAIT_SECONDS)
    wait_ports_closed(ports, PORT_RELEASE_SECONDS)
    return outcome


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def wait_ports_closed(ports: Sequence[tuple[str, int]], timeout: float) -> bool:
    """Waits until no ``(host, port)`` accepts connections. A killed multi-threaded process (a JVM) is
    a zombie, so not `alive`, as soon as its main thread exits, while the threads that hold its
    listening sockets may still be exiting: starting its successor at once fails with "port taken"."""
    deadline = time.monotonic() + timeout
    while any(port_open(host, port) for host, port in ports):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def stop_pidfile(
    pidfile: Path, timeout: float = 30.0, kill: bool = False, ports: Sequence[tuple[str, int]] = ()
) -> str:
    """Stop the process recorded in ``pidfile`` (if it is still that process) and remove the file; with
    ``ports``, return only once they are closed (bounded)."""
    pid = read_pid(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return "not running"
    outcome = terminate(pid, timeout=timeout, kill=kill, marker=read_marker(pidfile), ports=ports)
    pidfile.unlink(missing_ok=True)
    return "not running" if outcome == "gone" else f"{outcome} (pid {pid})"
