"""`trialwatch replay`: ingest parsing and the rules engine composed in-process (INTERFACES §4).

The one place outside the services that joins parsing and rules; it runs the very functions the live
services run. Signals go to stdout as NDJSON, record by record in input order; rejected records go to
stderr as NDJSON `{"source", "error"}` and nothing else is written there.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from itertools import islice
from typing import IO, Any, BinaryIO, NoReturn, cast

import orjson

from services.ingest.domain import Parsed, ParserConfig, ParseResult, parse_stream
from services.safety_rules.domain import Engine, InMemoryStateStore, StudyConfig, select_study
from shared.events import ClinicalEvent, Signal, utc_iso

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_REJECTED = 65  # EX_DATAERR (sysexits.h): some input records were rejected
PARSE_AHEAD = 256  # records parsed before they are evaluated (see _read_ahead)


def signal_line(signal: Signal) -> bytes:
    """`signal.to_public()` as one NDJSON line, built from the fields directly: the same bytes without
    pydantic's JSON-mode dump (INTERFACES §3; a test checks the equality on every rule's signals)."""
    public: dict[str, Any] = {
        "signal_id": signal.signal_id,
        "study_id": signal.study_id,
        "subject_id": signal.subject_id,
        "rule_id": signal.rule_id,
        "severity": signal.severity,
        "action": signal.action,
        "status": signal.status,
        "observed_at": utc_iso(signal.observed_at),
        "evidence": signal.evidence,
        "detail": signal.detail,
    }
    if signal.retracts is not None:
        public["retracts"] = signal.retracts
    if signal.due_at is not None:
        public["due_at"] = utc_iso(signal.due_at)
    try:
        return orjson.dumps(public, option=orjson.OPT_APPEND_NEWLINE)
    except TypeError:  # a detail value orjson does not know (none today): pydantic's JSON mode converts it
        return orjson.dumps(signal.to_public(), option=orjson.OPT_APPEND_NEWLINE)


def _error_line(source: str, error: str) -> bytes:
    return orjson.dumps({"source": source, "error": error}) + b"\n"


def open_inputs(paths: Sequence[str], stack: ExitStack, stderr: IO[bytes]) -> list[tuple[str, BinaryIO]] | None:
    """Open every input before reading any, so a missing file is a usage error with no partial output."""
    opened: list[tuple[str, BinaryIO]] = []
    for path in paths:
        if path == "-":
            opened.append(("-", sys.stdin.buffer))
            continue
        try:
            opened.append((path, stack.enter_context(open(path, "rb"))))  # noqa: SIM115
        except OSError as error:
            stderr.write(_error_line(path, f"cannot read input: {error.strerror or error}"))
            return None
    return opened


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Replay builds its state (and frees the rest) without reference cycles: reference counting frees
    everything it drops, as `tests/cli/test_replay_garbage.py` checks on the corpus. The cycle collector
    would only rescan that growing state: with a pass per 50,000 net allocations it still took 6-8 % of
    the CPU time of the benchmark's NDJSON replay (two passes of 40-70 ms each, a full one at the end)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def replay_parser_config(study: StudyConfig) -> ParserConfig:
    """How replay parses: no raw copy is kept and no event is published, so neither the blanked copies nor
    the event ids are built (the benchmark's parse-only figures use the same)."""
    return ParserConfig(
        study_ids=frozenset({study.study_id}), default_study_id=study.study_id, keep_raw=False, event_ids=False
    )


def replay(inputs: Iterable[tuple[str, BinaryIO]], study: StudyConfig, stdout: IO[bytes], stderr: IO[bytes]) -> int:
    """Process the inputs in order through parser and engine; return the INTERFACES §4 exit code."""
    with _no_cycle_collection():
        return _replay(inputs, study, stdout, stderr)


def _replay(inputs: Iterable[tuple[str, BinaryIO]], study: StudyConfig, stdout: IO[bytes], stderr: IO[bytes]) -> int:
    parser_config = replay_parser_config(study)
    engine = Engine(study, InMemoryStateStore())
    write = stdout.write
    rejected = False
    advance_clock, process = engine.advance_clock, engine.process
    for name, stream in inputs:
        for batch in _read_ahead(parse_stream(stream, parser_config, name=name)):
            for result in batch:
                if not isinstance(result, Parsed):
                    stderr.write(_error_line(result.source, result.error))
                    rejected = True
                    continue
                # "Sequence[...]" as text: evaluating the subscription cost a third of a microsecond per record
                events = cast("Sequence[ClinicalEvent]", result.events)
                if not events or result.non_production:
                    continue
                now = events[0].recorded_at if len(events) == 1 else max(event.recorded_at for event in events)
                signals = advance_clock(now)
                signals += process(events)
                for signal in signals:
                    write(signal_line(signal))
    return EXIT_REJECTED if rejected else EXIT_OK


def _read_ahead(results: Iterator[ParseResult]) -> Iterator[list[ParseResult]]:
    """The parser's results, PARSE_AHEAD at a time: parsing a run of records and then evaluating them costs
    less CPU than alternating record by record (caches); the order is unchanged."""
    while batch := list(islice(results, PARSE_AHEAD)):
        yield batch


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `trialwatch replay` (INTERFACES §4)."""
    parser.add_argument(
        "--study", metavar="FILE", help="study configuration (default: $TRIALWATCH_STUDY, else ANAKINRA-AD)"
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="HL7, FHIR or NDJSON files; - for stdin")


def run(args: argparse.Namespace) -> NoReturn:
    """Entry point of the `replay` subcommand: the process ends here, once its output is flushed, without
    the interpreter's teardown (freeing the replay's state object by object and a last collection cost
    tens of milliseconds; there is nothing else to release, no other thread or file to close)."""
    code = replay_files(args.inputs, args.study)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def replay_files(paths: Sequence[str], study_path: str | None) -> int:
    """Replay files by path, writing to this process's stdout and stderr."""
    stdout, stderr = sys.stdout.buffer, sys.stderr.buffer
    try:
        study = select_study(study_path, os.environ)
    except (ValueError, OSError) as error:
        stderr.write(_error_line(study_path or os.environ.get("TRIALWATCH_STUDY", "study"), str(error)))
        return EXIT_USAGE
    with ExitStack() as stack:
        inputs = open_inputs(paths, stack, stderr)
        if inputs is None:
            return EXIT_USAGE
        code = replay(inputs, study, stdout, stderr)
    stdout.flush()
    return code
