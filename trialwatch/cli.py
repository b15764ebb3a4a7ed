"""The `trialwatch` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="trialwatch", description="Clinical trial safety monitoring")
    commands = parser.add_subparsers(dest="command", required=True)

    replay = commands.add_parser("replay", help="evaluate input files offline; signals as NDJSON on stdout")
    replay.add_argument(
        "--study",
        metavar="FILE",
        help="study configuration (default: $TRIALWATCH_STUDY, else the packaged ANAKINRA-AD)",
    )
    replay.add_argument("inputs", nargs="+", metavar="INPUT", help="HL7, FHIR or NDJSON files; - for stdin")

    commands.add_parser("demo", help="run the demo against the running stack (make demo)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "replay":
        from trialwatch.replay import run

        return run(args.inputs, args.study)
    if args.command == "demo":
        from trialwatch.demo import run_demo

        return run_demo()
    return 2


if __name__ == "__main__":
    sys.exit(main())
