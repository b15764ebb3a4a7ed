"""The measurements of the replay benchmark: the CLI as a pinned subprocess, the read+split floor, and the
in-process split between parsing and rules. Every function times one thing and returns plain numbers."""

from __future__ import annotations

import gc
import hashlib
import itertools
import os
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter, process_time
from typing import IO, BinaryIO, cast

import orjson

from services.ingest.domain import Parsed, parse_stream
from services.safety_rules.domain import StudyConfig, select_study
from trialwatch.replay import replay, replay_parser_config

CHUNK = 1 << 20
Timing = tuple[float, float]  # (wall seconds, CPU seconds of this process)


def _now() -> Timing:
    return perf_counter(), process_time()


def _since(start: Timing) -> Timing:
    return perf_counter() - start[0], process_time() - start[1]


@dataclass(slots=True)
class ChildRun:
    """One `trialwatch replay` subprocess over some files, pinned to one CPU."""

    seconds: float
    cpu_seconds: float
    exit_code: int
    peak_rss_mb: float
    stdout_lines: int
    signals: int
    stderr_lines: int
    by_rule: Counter[str] = field(default_factory=Counter)
    stdout_sha256: str = ""  # of the signal output: byte-identical output across revisions has the same digest


def trialwatch_command() -> list[str]:
    """`trialwatch` next to this interpreter (the project venv), else on PATH."""
    beside = Path(sys.executable).parent / "trialwatch"
    found = str(beside) if beside.exists() else shutil.which("trialwatch")
    if found is None:
        raise SystemExit("trialwatch is not installed: run `make install` and use .venv/bin/python")
    return [found]


def run_replay(paths: Sequence[Path], cpu: int, out_dir: Path, label: str) -> ChildRun:
    """Wall time and peak RSS (wait4 rusage of this very child) of `taskset -c CPU trialwatch replay FILES`."""
    stdout_path, stderr_path = out_dir / f"replay-{label}.out", out_dir / f"replay-{label}.err"
    taskset = shutil.which("taskset")
    pin = [taskset, "-c", str(cpu)] if taskset else []
    command = [*pin, *trialwatch_command(), "replay", *map(str, paths)]
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        start = perf_counter()
        child = subprocess.Popen(command, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(child.pid, 0)
        seconds = perf_counter() - start
        child.returncode = os.waitstatus_to_exitcode(status)
    lines = signals = 0
    by_rule: Counter[str] = Counter()
    digest = hashlib.sha256()
    with stdout_path.open("rb") as stdout:
        for line in stdout:
            lines += 1
            digest.update(line)
            signal = orjson.loads(line)
            if isinstance(signal, dict) and signal.get("signal_id"):
                signals += 1
                by_rule[f"{signal.get('rule_id')} {signal.get('status')}"] += 1
    with stderr_path.open("rb") as stderr:
        stderr_lines = sum(1 for _ in stderr)
    cpu_seconds = usage.ru_utime + usage.ru_stime
    return ChildRun(
        seconds,
        cpu_seconds,
        child.returncode,
        usage.ru_maxrss / 1024,
        lines,
        signals,
        stderr_lines,
        by_rule,
        digest.hexdigest(),
    )


def read_split(paths: Sequence[Path], fmt: str) -> tuple[Timing, int, int]:
    """The floor: read the files in 1 MiB chunks and split them into messages (at `\\rMSH`) or lines, visiting
    each piece in Python, parsing nothing. Returns ((wall, cpu) seconds, bytes, pieces)."""
    separator = b"\rMSH" if fmt == "hl7" else b"\n"
    total_bytes = pieces = 0
    start = _now()
    for path in paths:
        tail = b""
        with path.open("rb") as stream:
            while chunk := stream.read(CHUNK):
                total_bytes += len(chunk)
                parts = (tail + chunk).split(separator)
                tail = parts.pop()
                for part in parts:
                    pieces += bool(part)
        pieces += bool(tail.strip())
    return _since(start), total_bytes, pieces


def study_config() -> StudyConfig:
    """The study `trialwatch replay` would use here (TRIALWATCH_STUDY, else the packaged ANAKINRA-AD)."""
    return select_study(None, os.environ)


def parse_only(paths: Sequence[Path], study: StudyConfig) -> tuple[list[Timing], int, int, int]:
    """parse_stream alone over each file, consuming every result: (timing per file, results, events, rejected)."""
    config = replay_parser_config(study)  # as replay parses
    seconds: list[Timing] = []
    results = events = rejected = 0
    gc.collect()
    for path in paths:
        start = _now()
        with path.open("rb") as stream:
            for result in parse_stream(stream, config, name=str(path)):
                results += 1
                if isinstance(result, Parsed):
                    events += len(result.events)
                else:
                    rejected += 1
        seconds.append(_since(start))
    return seconds, results, events, rejected


class _CountingSink:
    """Stands in for stdout / stderr: counts lines, keeps nothing."""

    def __init__(self) -> None:
        self.lines = 0

    def write(self, data: bytes) -> int:
        self.lines += data.count(b"\n")
        return len(data)


def parse_and_rules(paths: Sequence[Path], study: StudyConfig) -> tuple[list[Timing], int, int, int]:
    """`trialwatch.replay.replay` itself (parser + engine + signal output to a counting sink), timed per file.

    Returns (timing per file, signals, rejected lines, exit code).
    """
    marks: list[Timing] = []

    def inputs() -> Iterator[tuple[str, BinaryIO]]:
        for path in paths:
            with path.open("rb") as stream:
                marks.append(_now())
                yield str(path), stream
        marks.append(_now())

    stdout, stderr = _CountingSink(), _CountingSink()
    gc.collect()
    code = replay(inputs(), study, cast(IO[bytes], stdout), cast(IO[bytes], stderr))
    if len(marks) == len(paths):  # the generator was not resumed after the last file
        marks.append(_now())
    seconds = [(after[0] - before[0], after[1] - before[1]) for before, after in itertools.pairwise(marks)]
    return seconds, stdout.lines, stderr.lines, code
