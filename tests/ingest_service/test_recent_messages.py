"""The relay's memory of committed messages (`shared.messaging.outbox.RecentMessages`): bounded, oldest out."""

from __future__ import annotations

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
