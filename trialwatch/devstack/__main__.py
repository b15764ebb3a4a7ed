"""``python -m trialwatch.devstack [--stack dev|test] up [--infra-only] | down | reset | status``."""

from __future__ import annotations

import argparse
import os
import sys

from trialwatch.devstack import stack
from trialwatch.devstack.console import DevstackError
from trialwatch.devstack.envfile import EnvFileError
from trialwatch.devstack.paths import STACKS


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python -m trialwatch.devstack", description=__doc__)
    cli.add_argument("--stack", choices=STACKS, default="dev", help="dev (.env) or test (.env.test)")
    sub = cli.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start Kafka, PostgreSQL (and services); idempotent")
    up.add_argument("--infra-only", action="store_true", help="Kafka and PostgreSQL only")
    sub.add_parser("down", help="stop services, Kafka and PostgreSQL")
    sub.add_parser("reset", help="down, then delete Kafka and PostgreSQL data")
    sub.add_parser("status", help="show what runs (exit 3 if Kafka or PostgreSQL is down)")
    return cli


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "up":
            stack.up(args.stack, infra_only=args.infra_only)
        elif args.command == "down":
            stack.down(args.stack)
        elif args.command == "reset":
            stack.reset(args.stack)
        elif not stack.status(args.stack):
            return 3
    except (DevstackError, EnvFileError) as exc:
        print(f"[{args.stack}] ERROR: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `status | head`: stop printing quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
