"""`python -m bench.dashboard`: server time of the overview and a participant timeline (issue #7).

Targets: < 300 ms for the 8-participant trial, < 1 s for 1,000 participants x 180 days. For each size a
fresh database in the test stack's PostgreSQL (created, migrated, filled by bench/dashboard/synthetic.py,
dropped afterwards) and `python -m services.dashboard` as a real subprocess on a free port; each page is
requested ``--repeat`` times after one warm-up, and the server's own time (its Server-Timing header) is
reported as median and max, with the load average, since the machine is shared. Writes
out/bench-dashboard.json. Start the stack first: `python -m trialwatch.devstack --stack test up --infra-only`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.dashboard.synthetic import load
from shared.auth import dev_token
from trialwatch.devstack import envfile, pg_cluster, pg_layout
from trialwatch.devstack.paths import ALEMBIC_INI, REPO_ROOT
from trialwatch.devstack.settings import load_settings

OUT = REPO_ROOT / "out" / "bench-dashboard.json"
SIZES = ((8, 180), (1000, 180))


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def create_database(name: str) -> str:
    cfg = load_settings("test", create=False)
    lay = pg_layout.layout(cfg)
    pg_cluster.psql(
        cfg,
        lay,
        f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE); CREATE DATABASE "{name}" OWNER "{cfg.pg_target().user}";',
    )
    url = cfg.database_url.rsplit("/", 1)[0] + f"/{name}"
    argv = [sys.executable, "-m", "alembic", "-c", str(ALEMBIC_INI), "upgrade", "head"]
    subprocess.run(argv, env={**os.environ, "DATABASE_URL": url}, cwd=REPO_ROOT, check=True, capture_output=True)
    return url


def drop_database(name: str) -> None:
    cfg = load_settings("test", create=False)
    pg_cluster.psql(cfg, pg_layout.layout(cfg), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE);')


def start_dashboard(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        envfile.ENV_FILE_VAR: str(envfile.env_path("test")),
        "DATABASE_URL": url,
        "TRIALWATCH_DASHBOARD_PORT": str(port),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.dashboard"], env=env, cwd=REPO_ROOT, stdout=out, stderr=out
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit(f"dashboard did not start:\n{log.read_text()[-2000:]}")


def signed_in(base: str) -> httpx.Client:
    token = dev_token(envfile.load("test", create=False)["TRIALWATCH_TOKEN"], "dmc_member")
    client = httpx.Client(base_url=base, timeout=60)
    form = client.get("/signin").text
    csrf = form.split('name="csrf" value="')[1].split('"')[0]
    client.post("/signin", data={"token": token, "csrf": csrf, "next": "/"})
    return client


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of processes (the dashboard and its PostgreSQL backends), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def backend_pids(url: str) -> list[int]:
    """PostgreSQL backends serving the dashboard (application_name set by its engine)."""

    async def query() -> list[int]:
        connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            sql = "SELECT pid FROM pg_stat_activity WHERE application_name = 'trialwatch-dashboard'"
            return [int(row["pid"]) for row in await connection.fetch(sql)]
        finally:
            await connection.close()

    return asyncio.run(query())


def server_ms(client: httpx.Client, path: str, repeat: int, pids: Callable[[], list[int]]) -> dict[str, float]:
    client.get(path)  # warm-up: templates compiled, connections pooled
    watched = pids()
    cpu_before = cpu_seconds(watched)
    times = []
    for _ in range(repeat):
        response = client.get(path)
        response.raise_for_status()
        times.append(float(response.headers["server-timing"].split("dur=")[1]))
    cpu_ms = (cpu_seconds(watched) - cpu_before) * 1000 / repeat
    return {"median_ms": round(statistics.median(times), 1), "max_ms": round(max(times), 1), "cpu_ms": round(cpu_ms, 1)}


def measure(participants: int, days: int, repeat: int) -> dict[str, Any]:
    name = f"bench_dashboard_{participants}"
    url = create_database(name)
    process = None
    try:
        started = time.monotonic()
        events = asyncio.run(load(url, participants, days))
        load_seconds = round(time.monotonic() - started, 1)
        port = free_port()
        process = start_dashboard(url, port, REPO_ROOT / "out" / f"bench-dashboard-{participants}.log")
        client = signed_in(f"http://127.0.0.1:{port}")
        assert process is not None
        dashboard_pid = process.pid

        def pids() -> list[int]:
            return [dashboard_pid, *backend_pids(url)]

        try:
            cpu_before = time.process_time()
            figures = {
                "participants": participants,
                "days": days,
                "canonical_events": events,
                "load_seconds": load_seconds,
                "overview": server_ms(client, "/", repeat, pids),
                "timeline": server_ms(client, "/participants/SYN-0003", repeat, pids),
                "halting": server_ms(client, "/halting", repeat, pids),
                "endpoint": server_ms(client, "/endpoint", repeat, pids),
                "loadavg_1m": round(os.getloadavg()[0], 2),
            }
            figures["client_cpu_s"] = round(time.process_time() - cpu_before, 2)
        finally:
            client.close()
        return figures
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        drop_database(name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    results = [measure(participants, days, args.repeat) for participants, days in SIZES]
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    for figures in results:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
