"""`trialwatch demo`: what `make demo` runs — the default scenario on the live stack, from a fresh trial.

1. `make up` if needed (Kafka, PostgreSQL); the services are (re)started with the demo's routing variant
   (studies/demo/anakinra-ad.routing.yaml: acknowledgement windows of seconds, not hours, so that escalation
   shows within the run), after the stack's TrialWatch data is cleared (the demo is a whole trial from its
   first enrolment; a second run would otherwise see only duplicates).
2. The default scenario with the live view, then the summary (PostgreSQL and the SMTP sink only) and
   out/demo-summary.json; the e-mails exported to out/demo/mail/; `trialwatch audit verify`.
The stack keeps running; `make down` stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Mapping

from rich.console import Console

from services.dashboard.signin_hint import signin_hint
from shared.db import create_engine
from shared.settings import DatabaseSettings
from trialwatch.devstack import components
from trialwatch.devstack import stack as devstack
from trialwatch.devstack.paths import REPO_ROOT
from trialwatch.simulate.command import describe, make_view, report, simulate
from trialwatch.simulate.fresh import fresh_stack
from trialwatch.simulate.pipeline import PipelineTimeoutError
from trialwatch.simulate.scenario import DEFAULT_SCENARIO, load_scenario
from trialwatch.simulate.summary import export_mail

DEMO_ROUTING = REPO_ROOT / "studies" / "demo" / "anakinra-ad.routing.yaml"
OUT = REPO_ROOT / "out"
ESCALATION_WAIT = 75.0  # seconds: two URGENT acknowledgement windows of the demo routing, and a margin


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--speed", type=float, metavar="X", help="study days per second (default: the scenario's)")
    parser.add_argument("--no-live-view", action="store_true", help="plain lines instead of the live view")


def run(args: argparse.Namespace) -> int:
    """Entry point of the `demo` subcommand."""
    return run_demo(args.speed, live=not args.no_live_view)


async def _mail(env: Mapping[str, str]) -> list[tuple[str, str]]:
    engine = create_engine(DatabaseSettings.from_mapping(env), application_name="trialwatch-demo")
    try:
        return await export_mail(engine, OUT / "demo" / "mail")
    finally:
        await engine.dispose()


def _audit(env: Mapping[str, str]) -> str:
    from trialwatch.audit import _verify  # noqa: PLC0415 - the command's own check, not a second copy

    verdict = asyncio.run(_verify(env["DATABASE_URL"]))
    if verdict.ok:
        return f"[green]audit chain intact[/]: {verdict.entries} entries, head verified (trialwatch audit verify)"
    return f"[red]audit chain BROKEN at entry {verdict.seq}: {verdict.problem}[/]"


def start_stack(stack: str, console: Console) -> Mapping[str, str]:
    console.rule("[bold]1. The stack (make up)")
    cfg = devstack.up(stack, infra_only=True)
    components.services_stop(cfg)
    asyncio.run(fresh_stack(cfg.env))
    console.print("cleared the stack's TrialWatch data: the demo runs a whole trial from its first enrolment")
    os.environ["TRIALWATCH_ROUTING"] = str(DEMO_ROUTING)
    components.services_start(cfg)
    return cfg.env


def run_demo(speed: float | None = None, *, live: bool = True, console: Console | None = None) -> int:
    """The demo against the stack named by TRIALWATCH_STACK (default: the dev stack of `make up`)."""
    console = console or Console()
    env = start_stack(os.environ.get("TRIALWATCH_STACK", "dev"), console)
    scenario = load_scenario(DEFAULT_SCENARIO)
    pace = speed or scenario.days_per_second
    console.rule("[bold]2. A simulated trial, live")
    describe(console, scenario, pace)
    console.print(
        "[yellow]Demo configuration:[/] acknowledgement windows NOTIFY 2m, URGENT 30s, HALT 30s and digests after "
        f"10s ({DEMO_ROUTING.relative_to(REPO_ROOT)}; the study's are 24h, 1h, 1h and 30m). The clinical "
        "thresholds are the study's own."
    )
    try:
        result, summary = asyncio.run(
            simulate(
                scenario,
                env,
                make_view(console, scenario, live),
                OUT / "demo" / "sent",
                pace,
                escalation_wait=ESCALATION_WAIT,
            )
        )
    except PipelineTimeoutError as error:
        console.print(f"[red]✘ {error}[/]  (service logs: var/<stack>/log/<service>.log)")
        return 1
    console.rule("[bold]3. Summary (from PostgreSQL and the SMTP sink)")
    report(console, result, summary, OUT / "demo-summary.json")
    mail = asyncio.run(_mail(env))
    console.print(_audit(env))
    _where(console, env, len(mail))
    return 0


def _where(console: Console, env: Mapping[str, str], mails: int) -> None:
    console.rule("[bold]4. Where to look")
    console.print(
        f"e-mails: {mails} messages caught by the SMTP sink, exported to out/demo/mail/*.eml "
        "(stored in PostgreSQL, table smtp_sink.message)"
    )
    console.print(signin_hint(env), soft_wrap=True)
    console.print(
        "signals: .venv/bin/trialwatch signals   ·   alerts: the notifier API on port "
        f"{env['TRIALWATCH_NOTIFIER_PORT']} (GET /v1/alerts, bearer token from .env)"
    )
    console.print(
        "The stack keeps running (its notifier with the demo's short windows); [bold]make down[/] stops everything."
    )
