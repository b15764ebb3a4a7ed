"""safety_rules' database engine: `shared.db.create_engine`'s, with orjson for the JSON and JSONB columns.

Every batch reads and writes the participant states it touches as JSONB; with the standard library's
``json`` their encoding and decoding took about a tenth of a batch's time, with orjson a fraction of it.
PostgreSQL normalises JSONB, and the ``json`` columns are read back by orjson, so only whitespace changes.
No pre-ping (see `shared.db.engine.create_engine`): every transaction here is retried on a connection error
(the batch consumer, the relay, the clock tick).
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from shared.settings import DatabaseSettings


def json_text(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def create_engine(settings: DatabaseSettings, *, application_name: str) -> AsyncEngine:
    return create_async_engine(
        settings.url.get_secret_value(),
        pool_size=settings.pool_size,
        pool_pre_ping=False,
        connect_args={"server_settings": {"application_name": application_name}},
        json_serializer=json_text,
        json_deserializer=orjson.loads,
    )
