"""`event_json` (orjson from the event's fields) writes exactly what pydantic's serializer writes.

The canonical_event rows and the published RecordIngested carry these bytes; the contract is pydantic's
dump of the models, so every event of the replay corpus, the fixtures and the benchmark's stream must
come out byte for byte the same, and what orjson cannot write alike must go to pydantic.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

from ingest_builders import FIXTURES, make_config

from bench.generate import generate
from services.ingest.batch import event_json
from services.ingest.domain import Parsed, parse_stream
from shared.events import AdverseEventReported, DoseRecorded, Event
from shared.events.construct import construct

CORPUS = FIXTURES.parent / "corpus"


def _events(paths: list[Path]) -> list[Event]:
    config = make_config()
    return [
        event
        for path in paths
        if path.suffix != ".md"
        for result in parse_stream(path.read_bytes(), config, name=path.name)
        if isinstance(result, Parsed)
        for event in result.events
    ]


def test_every_event_of_the_corpus_and_fixtures_is_written_as_pydantic_writes_it() -> None:
    events = _events(sorted([*FIXTURES.iterdir(), *CORPUS.iterdir()]))
    assert len({event.kind for event in events}) == 8  # every family
    assert [event_json(event) for event in events] == [event.model_dump_json() for event in events]


def test_the_benchmark_stream_is_written_as_pydantic_writes_it(tmp_path: Path) -> None:
    manifest = generate(tmp_path, records=3_000, participants=50, seed=3)
    events = _events([tmp_path / entry["name"] for entry in manifest["files"]])
    assert len(events) > 10_000
    assert {"lab.result", "vital.sign", "dose", "adverse.event", "injection.site"} <= {e.kind for e in events}
    assert [event_json(event) for event in events] == [event.model_dump_json() for event in events]


def _dose(**changes: object) -> DoseRecorded:
    moment = datetime(2026, 3, 2, 8, 0, 0, 120, tzinfo=UTC)
    fields = {
        "event_id": "e-1",
        "kind": "dose",
        "schema_version": 1,
        "study_id": "S",
        "subject_id": "S-001",
        "occurred_at": moment,
        "recorded_at": moment,
        "source": 'REC:S:EX:"1"\\é\u2028\x00',
        "dedup_key": "REC:S:EX:1",
        "correlation_id": None,
        "causation_id": None,
        "given": True,
        "dose": Decimal("1E+2"),
        "dose_unit": "mg",
    }
    return construct(DoseRecorded, {**fields, **changes})


def test_decimals_times_and_escapes_are_written_alike() -> None:
    for event in (
        _dose(),
        _dose(dose=Decimal("-0.000")),
        _dose(dose=None),
        _dose(occurred_at=datetime(2026, 3, 2, 8, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))),
        _dose(occurred_at=datetime(2026, 3, 2, 8, tzinfo=timezone(timedelta(0)))),
    ):
        assert event_json(event) == event.model_dump_json()


def test_fields_out_of_declaration_order_are_written_alike() -> None:
    """pydantic, too, writes an instance's fields in the order of its ``__dict__``."""
    reordered = _dose()
    reordered.__dict__["event_id"] = reordered.__dict__.pop("event_id")  # now the last key
    assert event_json(reordered) == reordered.model_dump_json()
    assert event_json(reordered).endswith('"event_id":"e-1"}')


def test_what_orjson_cannot_write_goes_to_pydantic() -> None:
    moment = datetime(2026, 3, 2, tzinfo=UTC)
    huge = AdverseEventReported.model_validate(
        {
            **{key: value for key, value in _dose().__dict__.items() if key not in ("given", "dose", "dose_unit")},
            "kind": "adverse.event",
            "ae_id": "AE-1",
            "term": "rash",
            "grade": 2**70,  # over orjson's 64 bits (the model does not bound it)
            "ended_at": moment,
        }
    )
    assert event_json(huge) == huge.model_dump_json()
    assert str(2**70) in event_json(huge)
