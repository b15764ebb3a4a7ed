"""Idempotency and ordering properties (SAFETY_RULES §1 "a re-sent duplicate fires nothing new";
INTERFACES §3 deterministic ids; participant streams are independent), and the state's JSON form."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.safety_rules.domain import Engine, InMemoryStateStore, ParticipantState, StudyState, packaged_study

from .factories import Harness, Record, ae, lab
from .strategies import participant_stream

PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def replay(engine: Engine, records: list[Record], now: datetime | None = None) -> list[dict[str, Any]]:
    """Like `trialwatch replay`: advance the clock to the latest ingestion time, then process; at the
    end, advance it once more so that runs of different lengths compare."""
    out: list[dict[str, Any]] = []
    for record in records:
        now = record[0].recorded_at if now is None else max(now, record[0].recorded_at)
        out += [s.to_public() for s in engine.advance_clock(now)]
        out += [s.to_public() for s in engine.process(record)]
    if now is not None:
        out += [s.to_public() for s in engine.advance_clock(now)]
    return out


def latest(records: list[Record]) -> datetime | None:
    return max((record[0].recorded_at for record in records), default=None)


def by_participant(signals: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for signal in signals:
        if signal["subject_id"] is not None:
            grouped.setdefault(signal["subject_id"], []).append(signal)
    return grouped


def streams() -> st.SearchStrategy[list[list[Record]]]:
    return st.tuples(participant_stream("A"), participant_stream("B"), participant_stream("C")).map(list)


@PROPERTY_SETTINGS
@given(streams=streams(), data=st.data())
def test_resending_any_subset_of_records_adds_no_signal(streams: list[list[Record]], data: st.DataObject) -> None:
    records = [record for stream in streams for record in stream]
    expected = replay(Harness().engine, records)
    with_duplicates = list(records)
    for index in data.draw(st.lists(st.integers(0, len(records) - 1), max_size=len(records))):
        first = with_duplicates.index(records[index])
        with_duplicates.insert(data.draw(st.integers(first + 1, len(with_duplicates))), records[index])
    assert replay(Harness().engine, with_duplicates) == expected


@PROPERTY_SETTINGS
@given(streams=streams(), data=st.data())
def test_interleaving_participants_gives_the_same_participant_signals(
    streams: list[list[Record]], data: st.DataObject
) -> None:
    def run(records: list[Record]) -> dict[str, list[dict[str, Any]]]:
        engine = Harness().engine
        return by_participant([s.to_public() for record in records for s in engine.process(record)])

    sequential = [record for stream in streams for record in stream]
    queues = [list(stream) for stream in streams]
    interleaved: list[Record] = []
    while any(queues):
        queue = data.draw(st.sampled_from([q for q in queues if q]))
        interleaved.append(queue.pop(0))
    assert run(interleaved) == run(sequential)


def _reload(store: InMemoryStateStore) -> InMemoryStateStore:
    """A store rebuilt from the JSON the live adapter would keep in PostgreSQL."""
    fresh = InMemoryStateStore()
    for key, state in store.participants.items():
        fresh.participants[key] = ParticipantState.from_json(json.loads(json.dumps(state.to_json())))
    for study_id, study in store.studies.items():
        fresh.studies[study_id] = StudyState.from_json(json.loads(json.dumps(study.to_json())))
    fresh.processed = set(store.processed)
    return fresh


@PROPERTY_SETTINGS
@given(streams=streams(), cut=st.integers(0, 40))
def test_state_survives_a_json_round_trip(streams: list[list[Record]], cut: int) -> None:
    records = [record for stream in streams for record in stream]
    cut = min(cut, len(records))
    expected = replay(Harness().engine, records)
    store = InMemoryStateStore()
    first = replay(Engine(packaged_study(), store), records[:cut])
    second = replay(Engine(packaged_study(), _reload(store)), records[cut:], latest(records[:cut]))
    assert first + second == expected


def test_duplicate_record_fires_nothing() -> None:
    # §1 "a re-sent duplicate fires nothing new"; §6 duplicates by (STUDYID, DOMAIN, RECID) + content.
    harness = Harness()
    record = lab("NEUT", "0.4")
    assert len(harness.send(record)) == 1
    assert harness.send(record) == []
    event = ae("AE-1", "x", decod="Headache", criteria={"AESHOSP": True})
    assert len(harness.send(event)) == 2
    assert harness.send(event) == []


def test_signal_ids_are_deterministic_across_runs() -> None:
    # INTERFACES §3 "the same inputs give the same ids".
    records = [lab("NEUT", "0.8"), lab("NEUT", "1.2", recid="LB-C", status="corrected")]
    assert replay(Harness().engine, records) == replay(Harness().engine, records)
