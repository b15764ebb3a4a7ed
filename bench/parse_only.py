"""Parse-only throughput of `parse_stream` over a generated data set, HL7 and NDJSON apart (not a test).

    .venv/bin/python -m bench.generate --records 20000 --dir /tmp/parsers-data
    .venv/bin/python -m bench.parse_only --dir /tmp/parsers-data [--repeat 3] [--profile 15] [--no-raw]

Each format's files are parsed `--repeat` times, every result consumed; the fastest run counts, in CPU time
of this process (a shared machine's noise only ever slows a run down), with wall time and the load average
beside it. `--profile N` prints the top N functions by own time of one more run under cProfile.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import json
import os
import pstats
import sys
import time
from pathlib import Path

from services.ingest.domain import Parsed, ParserConfig, parse_stream

STUDY = "ANAKINRA-AD"


def _parse_files(paths: list[Path], config: ParserConfig) -> tuple[int, int, int]:
    results = events = rejected = 0
    for path in paths:
        with path.open("rb") as stream:
            for result in parse_stream(stream, config, name=path.name):
                results += 1
                if isinstance(result, Parsed):
                    events += len(result.events)
                else:
                    rejected += 1
    return results, events, rejected


def _timed(paths: list[Path], config: ParserConfig, repeat: int) -> dict[str, float | int]:
    best: dict[str, float | int] = {}
    for _ in range(repeat):
        gc.collect()
        wall, cpu = time.perf_counter(), time.process_time()
        results, events, rejected = _parse_files(paths, config)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if not best or cpu < best["cpu_s"]:
            best = {"records": results, "events": events, "rejected": rejected, "cpu_s": cpu, "wall_s": wall}
    best["per_cpu_s"] = round(best["records"] / best["cpu_s"])
    best["per_wall_s"] = round(best["records"] / best["wall_s"])
    best["cpu_s"], best["wall_s"] = round(best["cpu_s"], 3), round(best["wall_s"], 3)
    return best


def _profile(paths: list[Path], config: ParserConfig, top: int) -> None:
    profiler = cProfile.Profile()
    profiler.runcall(_parse_files, paths, config)
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True, help="a bench.generate data directory")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=int, default=0, metavar="N", help="print the top N of a profile")
    parser.add_argument("--only", choices=("hl7", "ndjson"), help="one format only")
    parser.add_argument("--no-raw", action="store_true", help="ParserConfig(keep_raw=False), as replay needs")
    args = parser.parse_args()
    config = ParserConfig(study_ids=frozenset({STUDY}), default_study_id=STUDY)
    if args.no_raw:
        config = dataclasses.replace(config, keep_raw=False)
    formats = {"hl7": sorted(args.dir.glob("*.hl7")), "ndjson": sorted(args.dir.glob("*.ndjson"))}
    report: dict[str, object] = {"load_before": os.getloadavg()}
    for name, paths in formats.items():
        if args.only in (None, name):
            report[name] = _timed(paths, config, args.repeat)
    report["load_after"] = os.getloadavg()
    print(json.dumps(report, indent=1))
    for name, paths in formats.items():
        if args.profile and args.only in (None, name):
            print(f"--- profile: {name}")
            _profile(paths, config, args.profile)


if __name__ == "__main__":
    main()
