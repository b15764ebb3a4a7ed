"""`trialwatch signals`: the persisted signals as NDJSON, in the format of `trialwatch replay`.

Each line is the INTERFACES §3 object exactly as the safety_rules service recorded it (the ``signal``
table keeps the JSON text, key order included), in recording order. The database is the one of the
stack named by TRIALWATCH_STACK (default dev), read from its env file (TRIALWATCH_ENV_FILE overrides
the path; a DATABASE_URL in the environment wins over both).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import orjson
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from services.safety_rules.adapters.tables import SignalRecord
from shared.db import create_engine
from shared.settings import DatabaseSettings
from trialwatch.devstack import envfile

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
FETCH_ROWS = 500


class SignalsError(Exception):
    """Why the command cannot run; the message is printed as is."""


def since_time(text: str) -> datetime:
    """ISO 8601 date or time; without an offset it is UTC (SAFETY_RULES §6)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date or time: {text!r}") from error
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def configure(parser: argparse.ArgumentParser) -> None:
    """Arguments of `trialwatch signals`."""
    parser.add_argument("--study", metavar="ID", help="only this study's signals")
    parser.add_argument(
        "--since", metavar="ISO-8601", type=since_time, help="only signals recorded at or after this time (UTC)"
    )


def database_settings() -> DatabaseSettings:
    """DATABASE_URL of the chosen stack's env file (the file's own stack when only the path is given)."""
    stack = os.environ.get("TRIALWATCH_STACK")
    if stack is None and os.environ.get(envfile.ENV_FILE_VAR):
        path = Path(os.environ[envfile.ENV_FILE_VAR]).expanduser()
        try:
            stack = envfile.parse(path.read_text(encoding="utf-8")).get("TRIALWATCH_STACK")
        except OSError as error:
            raise SignalsError(f"cannot read {path}: {error.strerror or error}") from error
    try:
        values = envfile.load(stack or "dev", create=False)
    except (envfile.EnvFileError, KeyError) as error:
        raise SignalsError(str(error)) from error
    if "DATABASE_URL" not in values:
        raise SignalsError("no DATABASE_URL in the env file")
    return DatabaseSettings.from_mapping({"DATABASE_URL": values["DATABASE_URL"]})


async def write_signals(
    database: DatabaseSettings, stdout: IO[bytes], *, study: str | None, since: datetime | None
) -> int:
    """Streams the matching signals to ``stdout``; returns how many were written."""
    query = select(SignalRecord.payload).order_by(SignalRecord.seq)
    if study is not None:
        query = query.where(SignalRecord.study_id == study)
    if since is not None:
        query = query.where(SignalRecord.recorded_at >= since)
    engine = create_engine(database, application_name="trialwatch-signals")
    written = 0
    try:
        async with engine.connect() as connection:
            rows = await connection.stream(query.execution_options(yield_per=FETCH_ROWS))
            async for (payload,) in rows:
                stdout.write(orjson.dumps(payload) + b"\n")
                written += 1
    finally:
        await engine.dispose()
    return written


def run(args: argparse.Namespace) -> int:
    """Entry point of the `signals` subcommand."""
    stdout, stderr = sys.stdout.buffer, sys.stderr.buffer
    try:
        database = database_settings()
    except (SignalsError, ValueError) as error:
        stderr.write(f"trialwatch signals: {error}\n".encode())
        return EXIT_USAGE
    try:
        asyncio.run(write_signals(database, stdout, study=args.study, since=args.since))
    except (OSError, SQLAlchemyError) as error:
        stderr.write(f"trialwatch signals: cannot read the signals: {type(error).__name__}: {error}\n".encode())
        return EXIT_FAILED
    stdout.flush()
    return EXIT_OK
