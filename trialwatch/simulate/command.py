"""`trialwatch simulate --scenario FILE [--speed X] [--no-live-view]`: run a scenario against the running stack.

The stack is the one of TRIALWATCH_STACK (default dev), read from its env file (TRIALWATCH_ENV_FILE overrides).
Every batch sent is kept in --sent-dir (numbered in send order: `trialwatch replay DIR/*` gives the same
signals, CLOCK-BREACH aside); the summary is printed and written to --summary. Exit 0 when the run completed
(rejections included: a malformed message is part of some scenarios), 1 when the stack did not keep up, 2 on
usage errors.

The summary covers the whole stack: for a summary of this run alone start from an empty stack (`make demo`
does; `make reset` then `make up` gives one). Run twice on one stack, a scenario sends only duplicates.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from rich.console import Console

from shared.db import create_engine
from shared.settings import DatabaseSettings
from trialwatch.devstack import envfile
from trialwatch.devstack.paths import REPO_ROOT
from trialwatch.send import stack_env
from trialwatch.simulate.pipeline import PipelineTimeoutError
from trialwatch.simulate.runner import RunResult, run_scenario
from trialwatch.simulate.scenario import DEFAULT_SCENARIO, Scenario, ScenarioError, load_scenario
from trialwatch.simulate.summary import build_summary, print_summary, write_summary
from trialwatch.simulate.view import LineView, LiveView, View

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
OUT = REPO_ROOT / "out"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", default=str(DEFAULT_SCENARIO), metavar="FILE", help="scenario YAML")
    parser.add_argument("--speed", type=float, metavar="X", help="study days per second (default: the scenario's)")
    parser.add_argument("--no-live-view", action="store_true", help="plain lines instead of the live view")
    parser.add_argument("--start-date", type=date.fromisoformat, metavar="YYYY-MM-DD", help="first enrolment")
    parser.add_argument(
        "--sent-dir", type=Path, default=OUT / "simulate" / "sent", metavar="DIR", help="where every file sent is kept"
    )
    parser.add_argument(
        "--summary", type=Path, default=OUT / "simulate-summary.json", metavar="FILE", help="summary JSON"
    )


def make_view(console: Console, scenario: Scenario, live: bool) -> View:
    from trialwatch.simulate.episodes import build  # noqa: PLC0415

    total = max(item.study_day for item in build(scenario))
    if live and console.is_terminal:
        return LiveView(console, total, f"TrialWatch simulator · {scenario.name} · {scenario.study_id}")
    return LineView(console, total)


async def simulate(
    scenario: Scenario,
    env: Mapping[str, str],
    view: View,
    sent_dir: Path,
    speed: float,
    *,
    escalation_wait: float = 0.0,
) -> tuple[RunResult, dict[str, Any]]:
    """Runs the scenario, then reads the summary back from the stack."""
    result = await run_scenario(scenario, env, view, sent_dir, speed, escalation_wait=escalation_wait)
    engine = create_engine(DatabaseSettings.from_mapping(env), application_name="trialwatch-summary")
    try:
        summary = await build_summary(engine, scenario.study_id)
    finally:
        await engine.dispose()
    return result, summary


def describe(console: Console, scenario: Scenario, speed: float) -> None:
    console.print(f"[bold]{scenario.name}[/]: {scenario.description}")
    console.print(
        f"seed {scenario.seed}, first enrolment {scenario.start} (simulated dates, ahead of today so that only "
        f"the data clock breaches regulatory clocks), {speed:g} study days per second"
    )


def shown(path: Path) -> str:
    return str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)


def report(console: Console, result: RunResult, summary: dict[str, Any], path: Path) -> None:
    print_summary(summary, console)
    write_summary(summary, path)
    sent = shown(result.files[0].parent) if result.files else "-"
    console.print(
        f"{result.transmissions} messages in {len(result.files)} files ({result.seconds:.0f}s, drained in "
        f"{result.drain_seconds:.1f}s); sent files: {sent}/; summary: {shown(path)}"
    )


def run(args: argparse.Namespace) -> int:
    console = Console()
    try:
        env = stack_env()
        scenario = load_scenario(args.scenario, start=args.start_date)
    except (OSError, envfile.EnvFileError, ScenarioError) as error:
        sys.stderr.write(f"trialwatch simulate: {error}\n")
        return EXIT_USAGE
    speed = args.speed or scenario.days_per_second
    describe(console, scenario, speed)
    view = make_view(console, scenario, not args.no_live_view)
    try:
        result, summary = asyncio.run(simulate(scenario, env, view, args.sent_dir, speed))
    except PipelineTimeoutError as error:
        console.print(f"[red]✘ {error}[/]")
        return EXIT_FAILED
    report(console, result, summary, args.summary)
    return EXIT_OK
