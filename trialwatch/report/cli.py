"""`trialwatch report --study ID --cut ISO-8601 --out FILE.html`: the DSMB packet of a data cut.

Reads the canonical events ingested up to the cut from the database of the env file (DATABASE_URL),
evaluates them with the rules engine in-process, and writes one self-contained HTML file. Prints the
content and input hashes. Exit 0, or 2 on usage errors (bad cut, unknown study).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import datetime
from pathlib import Path

from services.dashboard.adapters.plan_files import DEFAULT_STUDY, load_plan
from services.safety_rules.domain import select_study
from shared.settings import DatabaseSettings
from trialwatch.report.evaluation import evaluate
from trialwatch.report.render import render_packet
from trialwatch.report.snapshot import load_snapshot

EXIT_OK = 0
EXIT_USAGE = 2


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--study", required=True, metavar="ID", help="study id, e.g. ANAKINRA-AD")
    parser.add_argument("--cut", required=True, metavar="ISO-8601", help="data cut: data ingested up to this time")
    parser.add_argument("--out", required=True, metavar="FILE.html", help="where to write the packet")
    parser.add_argument(
        "--study-file", metavar="FILE", help="study configuration (default: $TRIALWATCH_STUDY, else packaged)"
    )


def parse_cut(value: str) -> datetime:
    cut = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if cut.tzinfo is None:
        raise ValueError("the cut needs a time zone (e.g. 2026-03-01T00:00:00Z)")
    return cut


def run(args: argparse.Namespace) -> int:
    try:
        cut = parse_cut(args.cut)
        config = select_study(args.study_file, os.environ)
        study_file = Path(args.study_file or os.environ.get("TRIALWATCH_STUDY") or DEFAULT_STUDY)
        plan = load_plan(study_file)
        database_url = DatabaseSettings.load().url.get_secret_value()
    except (ValueError, OSError) as error:  # pydantic's ValidationError is a ValueError
        sys.stderr.write(f"trialwatch report: {error}\n")
        return EXIT_USAGE
    if args.study not in (config.study_id, plan.study_id) or config.study_id != plan.study_id:
        sys.stderr.write(f"trialwatch report: study {args.study} is not configured (have {config.study_id})\n")
        return EXIT_USAGE
    snapshot = asyncio.run(load_snapshot(database_url, config.study_id, cut))
    packet = render_packet(config, plan, snapshot, evaluate(config, snapshot))
    Path(args.out).write_text(packet.html, encoding="utf-8")
    sys.stdout.write(f"{args.out}\tcontent sha256 {packet.content_hash}\tinput sha256 {packet.input_hash}\n")
    return EXIT_OK
