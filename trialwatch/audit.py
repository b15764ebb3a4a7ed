"""``trialwatch audit verify``: recompute the notifier's hash-chained audit trail.

Exit 0 when every entry and the chain head agree; 1 naming the first bad entry when an entry was altered,
removed or reordered, or the newest was truncated (the head, kept in its own table, still names it);
2 on usage errors. The database is the env file's DATABASE_URL (``TRIALWATCH_ENV_FILE``), or ``--database``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from services.notifier.adapters.audit import read_entries, read_head
from services.notifier.domain.audit_chain import Verdict, verify
from shared.settings import DatabaseSettings

EXIT_BROKEN = 1


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="audit_action", required=True, metavar="ACTION")
    check = actions.add_parser("verify", help="recompute the chain; exit 1 naming the first bad entry")
    check.add_argument("--database", metavar="URL", help="postgresql+asyncpg:// URL (default: DATABASE_URL)")


async def _verify(url: str) -> Verdict:
    engine = create_async_engine(url, isolation_level="REPEATABLE READ")  # head and entries: one snapshot
    try:
        async with async_sessionmaker(engine)() as session, session.begin():
            head = await read_head(session)
            entries = [entry async for entry in read_entries(session)]
            return verify(entries, head)
    finally:
        await engine.dispose()


def run(args: argparse.Namespace) -> int:
    url = args.database or DatabaseSettings.load().url.get_secret_value()
    verdict = asyncio.run(_verify(url))
    if verdict.ok:
        sys.stdout.write(f"audit chain intact: {verdict.entries} entries, head verified\n")
        return 0
    sys.stderr.write(f"audit chain BROKEN at entry {verdict.seq}: {verdict.problem}\n")
    sys.stderr.write(f"({verdict.entries} entries verified before it)\n")
    return EXIT_BROKEN
