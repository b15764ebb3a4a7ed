"""The `trialwatch` command: one subcommand per module, imported only when it runs (fast start-up)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# subcommand -> (module with `configure(parser)` and `run(args) -> int`, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "replay": ("trialwatch.replay", "evaluate input files offline; signals as NDJSON on stdout"),
    "send": ("trialwatch.send", "send input files to the running stack (MLLP, HTTP or Kafka)"),
    "signals": ("trialwatch.signals", "print persisted signals as NDJSON"),
    "demo": ("trialwatch.demo", "run the demo against the running stack (make demo)"),
    "simulate": ("trialwatch.simulate.command", "run a trial scenario against the running stack"),
    "audit": ("trialwatch.audit", "verify the notifier's hash-chained audit trail (exit 1 on tampering)"),
    "report": ("trialwatch.report.cli", "write the DSMB packet of a data cut as self-contained HTML"),
}


def _parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trialwatch", description="Clinical trial safety monitoring")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((arg for arg in argv if not arg.startswith("-")), None)
    for name, (module, help_text) in COMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            importlib.import_module(module).configure(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = _parser(arguments).parse_args(arguments)
    command: int = importlib.import_module(COMMANDS[args.command][0]).run(args)
    return command


if __name__ == "__main__":
    sys.exit(main())
