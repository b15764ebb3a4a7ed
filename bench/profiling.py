"""Where the time and the memory go: cProfile of `trialwatch.replay.replay` and a tracemalloc census of the
state the engine retains, each over the first records of one file (bounded, whatever the data size)."""

from __future__ import annotations

import cProfile
import gc
import io
import pstats
import sys
import tracemalloc
from collections import defaultdict
from pathlib import Path
from typing import IO, Any, cast

from services.ingest.domain import parse_stream
from services.safety_rules.domain import Engine, InMemoryStateStore, StudyConfig
from trialwatch.replay import replay, replay_parser_config

# coarse stages, by (file, function): their cumulative share of the profiled run
STAGES = {
    ("services/ingest/domain/stream.py", "parse_stream"): "parsing (parse_stream)",
    ("services/safety_rules/domain/engine.py", "process"): "rules (Engine.process)",
    ("services/safety_rules/domain/engine.py", "advance_clock"): "clocks (Engine.advance_clock)",
    ("shared/events/signal.py", "to_public"): "signal output (to_public)",
}
_ROOT = str(Path(__file__).resolve().parent.parent) + "/"


class _Sink:
    def write(self, data: bytes) -> int:
        return len(data)


def head(path: Path, fmt: str, count: int) -> bytes:
    """The first `count` messages (HL7) or lines (NDJSON) of a file."""
    separator = b"\rMSH" if fmt == "hl7" else b"\n"
    data = path.read_bytes()
    position = 0
    for _ in range(count):
        found = data.find(separator, position + 1)
        if found < 0:
            return data
        position = found
    return data[: position + 1]


def _short(filename: str) -> str:
    if filename == "~":
        return "(builtins)"
    if filename.startswith(_ROOT):
        return filename[len(_ROOT) :]
    for marker in ("site-packages/", "lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def profile_replay(label: str, data: bytes, study: StudyConfig, top: int = 15) -> dict[str, Any]:
    """Run replay over `data` under cProfile; the top functions by own time and the top files, with shares."""
    profiler = cProfile.Profile()
    sink = cast(IO[bytes], _Sink())
    profiler.runcall(replay, [(label, io.BytesIO(data))], study, sink, sink)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in stats.values()) or 1.0
    functions = []
    by_file: dict[str, float] = defaultdict(float)
    stages: dict[str, float] = {}
    for (filename, line, name), (_, calls, own, cumulative, _) in stats.items():
        where = _short(filename)
        if (where, name) in STAGES:
            stages[STAGES[where, name]] = round(cumulative / total, 4)
        by_file[where] += own
        functions.append(
            {
                "function": f"{where}:{line}:{name}",
                "calls": calls,
                "own_s": round(own, 3),
                "own_share": round(own / total, 4),
                "cumulative_share": round(cumulative / total, 4),
            }
        )
    functions.sort(key=lambda item: -item["own_s"])
    files = sorted(by_file.items(), key=lambda item: -item[1])[:top]
    return {
        "input": label,
        "profiled_seconds": round(total, 3),
        "stages_cumulative_share": stages,
        "top_functions": functions[:top],
        "top_files": [{"file": name, "own_share": round(own / total, 4)} for name, own in files],
    }


def memory_census(label: str, data: bytes, study: StudyConfig, top: int = 10) -> dict[str, Any]:
    """Memory still allocated after parse + engine over `data`, with the engine alive: by allocation site.

    Mirrors replay's loop (parse_stream, advance_clock, process) so the engine's state can be inspected.
    """
    config = replay_parser_config(study)  # as replay parses
    for _ in parse_stream(io.BytesIO(data[:4096]), config, name="warm-up"):
        pass  # caches and lazy imports are not state
    gc.collect()
    tracemalloc.start(4)
    engine, events = Engine(study, InMemoryStateStore()), 0
    for result in parse_stream(io.BytesIO(data), config, name=label):
        batch = getattr(result, "events", None)
        if batch:
            engine.advance_clock(max(event.recorded_at for event in batch))
            engine.process(batch)
            events += len(batch)
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    tracemalloc.stop()
    by_site: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for stat in snapshot.statistics("traceback"):
        # the innermost frame that is source code (not a generated `__init__` such as a dataclass's)
        frames = list(reversed(stat.traceback))  # most recent first
        frame = next((f for f in frames if f.filename != "<string>"), frames[0])
        site = by_site[f"{_short(frame.filename)}:{frame.lineno}"]
        site[0] += stat.size
        site[1] += stat.count
    total = sum(size for size, _ in by_site.values()) or 1
    sites = sorted(by_site.items(), key=lambda item: -item[1][0])[:top]
    return {
        "input": label,
        "events": events,
        "retained_mb": round(total / 1e6, 1),
        "bytes_per_event": total // max(events, 1),
        "top_sites": [
            {"site": site, "mb": round(size / 1e6, 2), "share": round(size / total, 4), "blocks": count}
            for site, (size, count) in sites
        ],
    }


def print_profile(report: dict[str, Any], out: IO[str] = sys.stdout) -> None:
    print(f"\nCPU profile of {report['input']} ({report['profiled_seconds']} s under cProfile)", file=out)
    for stage, share in report["stages_cumulative_share"].items():
        print(f"  {share:>6.1%}  {stage} (cumulative)", file=out)
    print(f"  {'own %':>6} {'cum %':>6} {'calls':>10}  function", file=out)
    for item in report["top_functions"]:
        print(
            f"  {item['own_share']:>6.1%} {item['cumulative_share']:>6.1%} {item['calls']:>10}  {item['function']}",
            file=out,
        )
    print("  by source file (own time):", file=out)
    for item in report["top_files"][:10]:
        print(f"  {item['own_share']:>6.1%}  {item['file']}", file=out)


def print_memory(report: dict[str, Any], out: IO[str] = sys.stdout) -> None:
    print(
        f"\nmemory retained after {report['input']}: {report['retained_mb']} MB for {report['events']:,} events "
        f"({report['bytes_per_event']} bytes/event); by allocation site:",
        file=out,
    )
    for item in report["top_sites"]:
        print(f"  {item['share']:>6.1%} {item['mb']:>7.2f} MB {item['blocks']:>9,} blocks  {item['site']}", file=out)
