"""The benchmark's output: the headline figures, the floors they are judged against, the machine."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Issue #4 floors.
FLOOR_RECORDS_PER_S = 2000.0
FLOOR_P99_MS_AT_200 = 250.0
FLOOR_RSS_MB = 200.0


def quantile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank quantile (None without values)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q * len(ordered) + 0.5)))
    return round(ordered[rank - 1], 1)


def quantiles(values: Sequence[float]) -> dict[str, Any]:
    return {
        "count": len(values),
        "p50": quantile(values, 0.50),
        "p95": quantile(values, 0.95),
        "p99": quantile(values, 0.99),
        "max": round(max(values), 1) if values else None,
        "mean": round(statistics.fmean(values), 1) if values else None,
    }


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), platform.processor())
    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "load_average": [round(value, 2) for value in os.getloadavg()],
    }


def floors(result: dict[str, Any]) -> dict[str, Any]:
    """Each floor with the measured figure and whether it holds."""
    rss = result["rss_mb"]
    p99 = result["p99_ms_at_200"]
    return {
        "end_to_end_records_per_s": {
            "floor": FLOOR_RECORDS_PER_S,
            "measured": result["end_to_end_records_per_s"],
            "met": result["end_to_end_records_per_s"] >= FLOOR_RECORDS_PER_S,
        },
        "p99_ms_at_200": {"floor": FLOOR_P99_MS_AT_200, "measured": p99, "met": p99 is not None and p99 <= 250.0},
        "rss_mb": {"floor": FLOOR_RSS_MB, "measured": rss, "met": all(mb <= FLOOR_RSS_MB for mb in rss.values())},
    }


def summary(result: dict[str, Any]) -> str:
    checks = result["floors"]
    cpu = result["flood_cpu"]
    lines = [
        f"end to end      {result['end_to_end_records_per_s']:>9.0f} records/s   (floor {FLOOR_RECORDS_PER_S:.0f})"
        f"  {'ok' if checks['end_to_end_records_per_s']['met'] else 'MISSED'}",
        f"passthrough     {result['passthrough_records_per_s']:>9.0f} records/s   ratio {result['ratio']:.3f}",
        f"p50/p95/p99@200 {result['p50_ms_at_200']} / {result['p95_ms_at_200']} / {result['p99_ms_at_200']} ms"
        f"   (p99 floor {FLOOR_P99_MS_AT_200:.0f})  {'ok' if checks['p99_ms_at_200']['met'] else 'MISSED'}",
        f"rss MB          {result['rss_mb']}   (floor {FLOOR_RSS_MB:.0f})"
        f"  {'ok' if checks['rss_mb']['met'] else 'MISSED'}",
        f"processes       {', '.join(result['processes'])} (+ Kafka, PostgreSQL)",
        f"signals         {result['signals']}",
        "floods          "
        + " / ".join(f"{flood['steady_records_per_s']:.0f}" for flood in result["runs"].get("floods", []))
        + " records/s (the median one reported)",
        f"records/CPU s   ingest {cpu['ingest_records_per_cpu_s']}, safety_rules {cpu['rules_records_per_cpu_s']},"
        f" pipeline {cpu['pipeline_records_per_cpu_s']} (flood)",
        f"load average    {result['machine']['load_average']} -> {result['machine']['load_average_end']}",
    ]
    paced = result["runs"].get(f"paced_{result.get('rate', 200.0):g}", {})
    for name, figures in paced.get("record_stages_ms", {}).items():
        lines.append(f"  {name:34s} p50/p95/p99 {figures['p50']} / {figures['p95']} / {figures['p99']} ms")
    return "\n".join(lines)
