"""The RecordIngested of an outbox row the relay does not hold in memory, rebuilt from the rows it refers to.

ingest's outbox row names its record (``source_key``) instead of holding a copy of the message (migration
0009_ingestpg): the message is the record's ledger row (dedup key, study, arrival time and channel) around
its canonical events as stored, in their order (``ordinal``), all committed in the outbox row's
transaction. Rebuilt with the envelope the writer used (`services.ingest.batch.Envelope`), the bytes are
those the writer handed the relay. A row written before that migration is published from its own payload.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from services.ingest.batch import Arrival, Envelope
from shared.messaging.outbox import Outgoing

STORED = """
SELECT o.id, o.topic, o.key, o.headers::text, o.payload::text, o.event_id,
       r.source_key, r.study_id, r.received_at, r.channel, r.format,
       (SELECT string_agg(c.payload::text, ',' ORDER BY c.ordinal, c.event_id)
        FROM ingest.canonical_event AS c WHERE c.dedup_key = o.source_key) AS events
FROM ingest.outbox AS o
LEFT JOIN ingest.raw_input AS r ON r.source_key = o.source_key
WHERE o.id = ANY($1)
"""


class RecordMissingError(LookupError):
    """An outbox row without a payload whose record is not in the ledger: the relay retries and reports it."""


async def read_stored(driver: Any, ids: Sequence[int]) -> dict[int, Outgoing]:
    """`shared.messaging.outbox.ReadStored` for ingest's outbox: the message of each row."""
    envelopes: dict[tuple[Any, str], Envelope] = {}
    messages: dict[int, Outgoing] = {}
    for row in await driver.fetch(STORED, ids):
        row_id, topic, key, headers, payload, record_id, source_key, study_id, received_at, channel, fmt, events = row
        if payload is None:
            if source_key is None:
                raise RecordMissingError(f"outbox row {row_id} ({record_id}): its record is not in the ledger")
            envelope = envelopes.get((received_at, channel))
            if envelope is None:
                arrival = Arrival(channel, fmt, received_at, study_id)
                envelope = envelopes[(received_at, channel)] = Envelope(arrival)
            payload = envelope.message(record_id, source_key, study_id, [events] if events else [])
        messages[row_id] = Outgoing(topic, key.encode(), payload.encode(), orjson.loads(headers))
    return messages
