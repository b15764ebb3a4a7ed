"""Benchmark of `trialwatch replay` (issue #3): throughput, memory, parse vs rules, against the read+split floor.

    python -m bench.replay_bench [--dir out/bench-data] [--records 200000] [--cpu 0] [--small] [--profile auto]

Generates the synthetic stream when absent (bench.generate), then on ONE core:
1. `trialwatch replay` as a subprocess (taskset) over the HL7 files, the NDJSON files, and all files in replay
   order: wall time, rate, peak RSS of the child (wait4), signals (asserted equal to the stdout line count);
2. the floor: reading the same files and splitting them into messages / lines, parsing nothing;
3. in-process: parse_stream alone, then `replay()` itself (parse + rules); rules = the difference;
4. with failed floors (or `--profile always`), cProfile hot spots of one file of each format.
`--compile-bytecode` first compiles the project's modules into __pycache__, as a normal installation has
them: where PYTHONDONTWRITEBYTECODE is set (this machine) every start otherwise compiles them from source.
Writes out/bench-replay.json and prints a table. Figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import sys
import time
from pathlib import Path
from statistics import median
from typing import Any

from bench import measure, report
from bench.generate import DEFAULT_DIR, DEFAULT_RECORDS, SMALL_RECORDS, generate, load_manifest
from bench.profiling import head, memory_census, print_memory, print_profile, profile_replay

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("services", "shared", "trialwatch")


def ensure_dataset(directory: Path, records: int, participants: int, seed: int) -> dict[str, Any]:
    manifest = load_manifest(directory)
    wanted = {"records": records, "participants": participants, "seed": seed}
    if (
        manifest is None
        or any(manifest.get(key) != value for key, value in wanted.items())
        or not all((directory / item["name"]).exists() for item in manifest["files"])
    ):
        print(f"generating {records:,} records into {directory} ...", flush=True)
        manifest = generate(directory, records=records, participants=participants, seed=seed)
    return manifest


def _end_to_end(runs: list[measure.ChildRun], records: int, startup: float) -> dict[str, Any]:
    best = min(runs, key=lambda child: child.seconds)
    return {
        "records": records,
        "seconds": round(best.seconds, 3),
        "all_seconds": [round(child.seconds, 3) for child in runs],
        "cpu_seconds": round(best.cpu_seconds, 3),
        "per_s": round(records / best.seconds, 1),
        # None when startup is most of the run (small inputs): the difference would be noise
        "net_per_s": round(records / (best.seconds - startup), 1) if best.seconds > 2 * startup else None,
        "cpu_per_s": round(records / best.cpu_seconds, 1),
        "peak_rss_mb": round(max(child.peak_rss_mb for child in runs), 1),
        "exit_code": best.exit_code,
        "stdout_lines": best.stdout_lines,
        "signals": best.signals,
        "rejected": best.stderr_lines,
        "signals_by_rule": dict(sorted(best.by_rule.items())),
        "stdout_sha256": best.stdout_sha256,
    }


def _split(parse: measure.Timing, both: measure.Timing, records: int) -> dict[str, Any]:
    return {
        "parse_s": round(parse[0], 3),
        "parse_rules_s": round(both[0], 3),
        "rules_s": round(both[0] - parse[0], 3),
        "rules_share": round((both[0] - parse[0]) / both[0], 3),
        "parse_cpu_s": round(parse[1], 3),
        "parse_rules_cpu_s": round(both[1], 3),
        "rules_share_cpu": round((both[1] - parse[1]) / both[1], 3),
        "parse_per_s": round(records / parse[0], 1),
        "parse_rules_per_s": round(records / both[0], 1),
    }


def _total(timings: list[measure.Timing]) -> measure.Timing:
    return sum(t[0] for t in timings), sum(t[1] for t in timings)


def _bytecode(compile_first: bool) -> str:
    """Compile the project's modules when asked; say how the children will find them."""
    if compile_first:
        for package in PACKAGES:
            compileall.compile_dir(ROOT / package, quiet=1)
        return "compiled first (__pycache__)"
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        return "as found (PYTHONDONTWRITEBYTECODE set: modules without __pycache__ compile at every start)"
    return "as found"


def run(args: argparse.Namespace) -> dict[str, Any]:
    records = SMALL_RECORDS if args.small else args.records
    manifest = ensure_dataset(args.dir, records, args.participants, args.seed)
    files = [args.dir / item["name"] for item in manifest["files"]]
    formats = [item["format"] for item in manifest["files"]]
    groups = {
        fmt: [path for path, kind in zip(files, formats, strict=True) if kind == fmt] for fmt in ("hl7", "ndjson")
    }
    groups["all"] = files
    counts = {fmt: sum(item["records"] for item in manifest["files"] if item["format"] == fmt) for fmt in groups}
    counts["all"] = counts["hl7"] + counts["ndjson"]
    host = report.machine()
    work = args.out.parent / "bench-replay"
    work.mkdir(parents=True, exist_ok=True)
    empty = work / "empty.hl7"
    empty.write_bytes(b"")

    bytecode = _bytecode(args.compile_bytecode)
    print(f"replay subprocesses on CPU {args.cpu} ({args.repeat} run(s) each; bytecode: {bytecode}) ...", flush=True)
    startup = median(measure.run_replay([empty], args.cpu, work, "empty").seconds for _ in range(3))
    runs = {
        name: [measure.run_replay(paths, args.cpu, work, name) for _ in range(args.repeat)]
        for name, paths in groups.items()
    }
    for name, children in runs.items():
        for child in children:
            assert child.signals == child.stdout_lines, f"{name}: {child.signals} signals != {child.stdout_lines} lines"
            assert child.stdout_sha256 == children[0].stdout_sha256, f"{name}: the output differs between runs"
    end_to_end = {name: _end_to_end(children, counts[name], startup) for name, children in runs.items()}

    print("baseline read+split, then in-process parse / parse+rules ...", flush=True)
    os.sched_setaffinity(0, {args.cpu})
    floor = {name: measure.read_split(groups[name], name) for name in ("hl7", "ndjson")}
    (hl7_t, hl7_bytes, hl7_n), (nd_t, nd_bytes, nd_n) = floor["hl7"], floor["ndjson"]
    floor["all"] = ((hl7_t[0] + nd_t[0], hl7_t[1] + nd_t[1]), hl7_bytes + nd_bytes, hl7_n + nd_n)
    study = measure.study_config()
    parse_t, results, events, parse_rejected = measure.parse_only(files, study)
    both_t, signals, rules_rejected, code = measure.parse_and_rules(files, study)
    assert results == counts["all"], f"parse_stream gave {results} results for {counts['all']} records"
    assert signals == end_to_end["all"]["signals"], f"in-process {signals} signals != subprocess"
    in_process = {
        name: _split(
            _total([t for path, t in zip(files, parse_t, strict=True) if path in paths]),
            _total([t for path, t in zip(files, both_t, strict=True) if path in paths]),
            counts[name],
        )
        for name, paths in groups.items()
    }
    baseline: dict[str, Any] = {}
    for name, (timing, size, pieces) in floor.items():
        assert pieces == counts[name], f"{name}: split {pieces} pieces for {counts[name]} records"
        seconds = timing[0]
        baseline[name] = {
            "seconds": round(seconds, 4),
            "cpu_seconds": round(timing[1], 4),
            "bytes": size,
            "units": pieces,
            "mb_per_s": round(size / 1e6 / seconds, 1),
            "units_per_s": round(pieces / seconds, 1),
            "replay_ratio": round(end_to_end[name]["seconds"] / seconds, 1),
            "parse_ratio": round(in_process[name]["parse_s"] / seconds, 1),
        }
    host["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    result: dict[str, Any] = {
        "benchmark": "trialwatch replay (issue #3)",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "revision": report.git_revision(ROOT),
        "command": "python -m bench.replay_bench " + " ".join(args.argv),
        "cpu": args.cpu,
        "bytecode": bytecode,
        "machine": host,
        "dataset": {
            "dir": str(args.dir),
            "records": counts["all"],
            "hl7_messages": counts["hl7"],
            "ndjson_records": counts["ndjson"],
            "participants": manifest["participants"],
            "seed": manifest["seed"],
            "mb": round(sum(item["bytes"] for item in manifest["files"]) / 1e6, 1),
            "files": [item["name"] for item in manifest["files"]],
            "generated": manifest["counts"],
        },
        "startup_s": round(startup, 3),
        "end_to_end": end_to_end,
        "in_process": in_process,
        "in_process_files": [
            {
                "file": path.name,
                "parse_s": round(p[0], 3),
                "parse_cpu_s": round(p[1], 3),
                "parse_rules_s": round(b[0], 3),
                "parse_rules_cpu_s": round(b[1], 3),
            }
            for path, p, b in zip(files, parse_t, both_t, strict=True)
        ],
        "in_process_check": {"events": events, "rejected": parse_rejected + rules_rejected, "exit_code": code},
        "baseline": baseline,
        "floors": report.floors(end_to_end),
    }
    checks = result["floors"]
    heads = {fmt: (f"{groups[fmt][0].name}[:{args.profile_records}]", groups[fmt][0]) for fmt in ("hl7", "ndjson")}
    rates_failed = not (checks["hl7_messages_per_s"]["pass"] and checks["ndjson_records_per_s"]["pass"])
    if args.profile == "always" or (args.profile == "auto" and rates_failed):
        print(f"cProfile over the first {args.profile_records:,} records of one file of each format ...", flush=True)
        result["profile"] = {
            fmt: profile_replay(label, head(path, fmt, args.profile_records), study)
            for fmt, (label, path) in heads.items()
        }
    if args.profile == "always" or (args.profile == "auto" and not checks["peak_rss_mb"]["pass"]):
        print("tracemalloc census of the engine state after the HL7 head ...", flush=True)
        label, path = heads["hl7"]
        result["memory"] = memory_census(label, head(path, "hl7", args.profile_records), study)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="data directory (default %(default)s)")
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS, help="records (default %(default)s)")
    parser.add_argument("--participants", type=int, default=500)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--small", action="store_true", help=f"quick check over {SMALL_RECORDS:,} records")
    parser.add_argument("--cpu", type=int, default=0, help="the one CPU to run on (default %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("out/bench-replay.json"))
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto")
    parser.add_argument("--profile-records", type=int, default=10_000, help="records of each format to profile")
    parser.add_argument("--repeat", type=int, default=1, help="subprocess runs of each kind; the fastest counts")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a floor is not met")
    parser.add_argument(
        "--compile-bytecode", action="store_true", help="compile the project's modules to __pycache__ first"
    )
    args = parser.parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    report.print_table(result)
    for profile in result.get("profile", {}).values():
        print_profile(profile)
    if "memory" in result:
        print_memory(result["memory"])
    print(f"\nwritten: {args.out}")
    met = all(check["pass"] for check in result["floors"].values())
    return 1 if args.strict and not met else 0


if __name__ == "__main__":
    raise SystemExit(main())
