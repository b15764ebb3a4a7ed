"""The relay's memory of committed messages (`shared.messaging.outbox.RecentMessages`) and what the writer hands
it: bounded, oldest out."""

from __future__ import annotations

from datetime import UTC, datetime

from ingest_service.builders import STUDY, oru, parser_config
from services.ingest.adapters.store import BatchWriter
from services.ingest.batch import Arrival, build_batch
from services.ingest.handlers import parse_units
from services.ingest.units import hl7_units
from shared.events import RecordIngested
from shared.messaging.outbox import Outgoing, RecentMessages


def message(n: int) -> tuple[str, Outgoing]:
    return f"event-{n}", Outgoing("t", b"S", f"payload {n}".encode(), {"event_id": f"event-{n}"})


def test_when_full_the_oldest_messages_are_dropped_for_the_relay_to_read_back() -> None:
    recent = RecentMessages(limit=3)
    recent.add([message(1), message(2)])
    recent.add([message(3), message(4)])
    assert len(recent) == 3
    assert recent.get("event-1") is None, "the oldest went: the relay claims it first and reads its row"
    assert recent.get("event-4") == message(4)[1]


def test_forgotten_messages_are_gone_and_unknown_ones_are_ignored() -> None:
    recent = RecentMessages()
    recent.add([message(1), message(2)])
    recent.forget(["event-1", "event-9"])
    assert recent.get("event-1") is None
    assert recent.get("event-2") == message(2)[1]
    assert len(recent) == 1


class AllFresh:
    """The asyncpg connection as `BatchWriter` uses it: every record new, the COPYs accepted."""

    async def fetch(self, _statement: str, keys: list[str], *_args: object) -> list[dict[str, str]]:
        return [{"source_key": key} for key in keys]

    async def copy_records_to_table(self, *_args: object, **_kwargs: object) -> None:
        return None


async def test_a_writer_keeps_only_the_last_messages_of_a_long_transaction() -> None:
    """A file's worth in one transaction: only what the relay would keep is held until the commit."""
    now = datetime.now(UTC)
    units = [unit for n in range(3) for unit in hl7_units(oru(f"KEEP-{n}"), f"keep-{n}")]
    batch, _ = build_batch(
        parse_units(units, "hl7v2", parser_config(), now), Arrival("http", "hl7v2", now, STUDY), set()
    )
    writer = BatchWriter(AllFresh(), keep=2)
    await writer.write(batch)
    assert [RecordIngested.model_validate_json(message.value).dedup_key for _, message in writer.committed] == [
        "HL7:NIHCC-LAB:KEEP-1",
        "HL7:NIHCC-LAB:KEEP-2",
    ]
