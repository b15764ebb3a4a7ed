"""`trialwatch demo`: what `make demo` runs after `make up`.

Until the trial simulator lands (issue #6) the demo is the pipeline smoke: one canonical event travelling
through Kafka from ingest to safety_rules to the notifier, each hop shown with its time.
"""

from __future__ import annotations

import argparse
import os

from services.dashboard.signin_hint import signin_hint
from trialwatch.devstack import envfile
from trialwatch.smoke import run_smoke


def configure(parser: argparse.ArgumentParser) -> None:
    """`trialwatch demo` takes no arguments yet."""


def run(args: argparse.Namespace) -> int:
    """Entry point of the `demo` subcommand."""
    return run_demo()


def run_demo() -> int:
    """Run the smoke against the stack named by TRIALWATCH_STACK (default: the dev stack of `make up`)."""
    stack = os.environ.get("TRIALWATCH_STACK", "dev")
    env = envfile.load(stack)
    code = run_smoke(env)
    print(signin_hint(env))
    return code
