"""Events built without validation are exactly what validation would build (shared.events contracts)."""

from __future__ import annotations

import random
import string
import uuid
from datetime import UTC, datetime

import orjson
import pytest
from ingest_builders import FIXTURES, adverse_event, observation, obx, oru

from services.ingest.domain import Parsed, ParserConfig, parse_stream
from services.ingest.domain.context import RecordContext
from services.ingest.domain.keys import event_id
from shared.events import CLINICAL_EVENT_ADAPTER, Event, deterministic_id
from shared.events.envelope import TRIALWATCH_NAMESPACE

FAMILIES = {
    "lab.result",
    "vital.sign",
    "adverse.event",
    "injection.site",
    "dose",
    "disposition",
    "dsmb.decision",
    "regulatory.submission",
}


def _sample_events(config: ParserConfig) -> list[Event]:
    inputs = [path.read_bytes() for path in sorted(FIXTURES.iterdir())]
    inputs.append(oru(obx("1", "751-8", "<0.5", value_type="ST"), obx("2", "8310-5", "101.3", "[degF]")).encode())
    inputs.append(orjson.dumps(observation(status="cancelled")) + b"\n" + orjson.dumps(adverse_event()) + b"\n")
    events: list[Event] = []
    for data in inputs:
        events += [e for r in parse_stream(data, config, name="x") if isinstance(r, Parsed) for e in r.events]
    return events


def test_samples_cover_every_family(config: ParserConfig) -> None:
    assert {event.kind for event in _sample_events(config)} == FAMILIES


def test_constructed_events_round_trip_through_validation(config: ParserConfig) -> None:
    for event in _sample_events(config):
        cls = type(event)
        assert cls.model_validate(event.model_dump()) == event
        assert cls.model_validate_json(event.model_dump_json()) == event
        assert CLINICAL_EVENT_ADAPTER.validate_json(event.model_dump_json()) == event
        assert cls.model_construct(**event.model_dump()) == event
        assert event.model_fields_set == set(cls.model_fields)


def test_constructed_events_stay_frozen(config: ParserConfig) -> None:
    event = _sample_events(config)[0]
    with pytest.raises(ValueError, match="frozen"):
        event.study_id = "X"  # type: ignore[misc]
    copy = event.model_copy(update={"study_id": "OTHER"})
    assert (copy.study_id, event.study_id) == ("OTHER", "ANAKINRA-AD")


def test_event_ids_are_shared_deterministic_ids() -> None:
    alphabet = string.printable + "éü∂\x1f"
    rng = random.Random(7)
    for _ in range(500):
        key, source = ("".join(rng.choices(alphabet, k=rng.randint(0, 40))) for _ in range(2))
        ordinal = rng.randint(0, 10_000)
        expected = str(uuid.uuid5(TRIALWATCH_NAMESPACE, f"{key}\x1f{source}\x1f{ordinal}"))  # the definition
        assert deterministic_id(key, source, str(ordinal)) == expected
        assert deterministic_id(*key.split("a")) == str(uuid.uuid5(TRIALWATCH_NAMESPACE, "\x1f".join(key.split("a"))))
        assert event_id(key, source, ordinal) == expected
        envelope = RecordContext("S", None, key, None).envelope("dose", source, ordinal, datetime.now(UTC))
        assert envelope["event_id"] == expected
