"""The `StateStore` contract the engine relies on, run against every adapter (in memory and SQL).

Each check takes ``open_store``: a callable returning a *view* of one persistent store. The in-memory
adapter returns itself; the SQL adapter returns a new `SqlStateStore` on the same transaction, so a
check also proves that what one view saved, the next one reads back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import cast

from services.ingest.domain import Parsed, ParserConfig, parse_stream
from services.safety_rules.domain import (
    Engine,
    InMemoryStateStore,
    ParticipantState,
    StateStore,
    StudyState,
    packaged_study,
)
from services.safety_rules.domain.results import LabValue
from shared.events import ClinicalEvent, Signal

OpenStore = Callable[[], StateStore]
INPUTS = Path(__file__).resolve().parents[1] / "fixtures" / "inputs"
SAMPLES = ("all_domains.ndjson", "mixed_terminators_mllp.hl7", "transaction_bundle.json")
STUDY = "ANAKINRA-AD"


def sample_records() -> list[Sequence[ClinicalEvent]]:
    """The accepted records of the shared fixture inputs, as the parsers produce them."""
    config = ParserConfig(study_ids=frozenset({STUDY}), default_study_id=STUDY)
    records: list[Sequence[ClinicalEvent]] = []
    for name in SAMPLES:
        with (INPUTS / name).open("rb") as stream:
            for result in parse_stream(stream, config, name=name):
                if isinstance(result, Parsed) and result.events and not result.non_production:
                    records.append(cast(Sequence[ClinicalEvent], result.events))
    return records


def replay_step(engine: Engine, events: Sequence[ClinicalEvent]) -> list[Signal]:
    """`trialwatch replay`'s step for one record."""
    return engine.advance_clock(max(event.recorded_at for event in events)) + engine.process(events)


def evaluated_in_memory() -> tuple[InMemoryStateStore, list[list[Signal]]]:
    store = InMemoryStateStore()
    engine = Engine(packaged_study(), store)
    return store, [replay_step(engine, events) for events in sample_records()]


def check_unknown_keys_read_as_absent(open_store: OpenStore) -> None:
    store = open_store()
    assert store.load_participant(STUDY, "AD-NOBODY") is None
    assert store.load_study("NO-SUCH-STUDY") is None
    assert store.is_processed("REC:NO:SUCH:KEY") is False


def check_participant_state_round_trips(open_store: OpenStore) -> None:
    filled, _ = evaluated_in_memory()
    saved = sorted(filled.participants.values(), key=lambda state: state.subject_id)
    assert saved and any(state.active for state in saved), "the sample must leave signals standing"
    for state in saved:
        open_store().save_participant(STUDY, state)
    for state in saved:
        loaded = open_store().load_participant(STUDY, state.subject_id)
        assert loaded is not None and loaded.to_json() == state.to_json()
        assert loaded.users == state.users and loaded.first_dose == state.first_dose


def check_participants_are_kept_per_study_and_subject(open_store: OpenStore) -> None:
    open_store().save_participant("STUDY-A", ParticipantState("S-1"))
    open_store().save_participant("STUDY-B", ParticipantState("S-1", specimens={"SPC": {"NEUT": "k"}}))
    first, second = open_store().load_participant("STUDY-A", "S-1"), open_store().load_participant("STUDY-B", "S-1")
    assert first is not None and first.specimens == {}
    assert second is not None and second.specimens == {"SPC": {"NEUT": "k"}}
    assert open_store().load_participant("STUDY-A", "S-2") is None


def check_a_saved_state_replaces_the_previous_one(open_store: OpenStore) -> None:
    open_store().save_participant(STUDY, ParticipantState("AD-777", specimens={"old": {}}))
    open_store().save_participant(STUDY, ParticipantState("AD-777", specimens={"new": {}}))
    loaded = open_store().load_participant(STUDY, "AD-777")
    assert loaded is not None and loaded.specimens == {"new": {}}


def alt(key: str, value: str) -> LabValue:
    return LabValue(
        key, "ALT", datetime(2026, 1, 5, tzinfo=UTC), Decimal(value), None, "U/L", None, Decimal(40), "final", "S", key
    )


def changed(open_store: OpenStore, change: Callable[[ParticipantState], None]) -> ParticipantState:
    """Loads AD-ORDER, changes it and saves it through the same view; returns it as the next view reads it."""
    view = open_store()
    state = view.load_participant(STUDY, "AD-ORDER")
    assert state is not None
    change(state)
    view.save_participant(STUDY, state)
    loaded = open_store().load_participant(STUDY, "AD-ORDER")
    assert loaded is not None and loaded.to_json() == state.to_json()
    return loaded


def check_changed_results_read_back_in_their_order(open_store: OpenStore) -> None:
    """A participant's results in the order the dict holds them, whatever happened to them in between
    (the SQL stores keep each result in a row of its own and write only those that changed)."""
    open_store().save_participant(STUDY, ParticipantState("AD-ORDER", results={k: alt(k, "10") for k in "ABCD"}))

    def update_remove_add(state: ParticipantState) -> None:
        state.results["B"] = alt("B", "20")
        del state.results["C"]
        state.results["E"] = alt("E", "30")

    loaded = changed(open_store, update_remove_add)
    assert list(loaded.results) == ["A", "B", "D", "E"]
    assert loaded.results["B"].value == Decimal(20)

    def remove_and_add_again(state: ParticipantState) -> None:
        del state.results["A"]
        state.results["A"] = alt("A", "11")  # a dict puts it last

    assert list(changed(open_store, remove_and_add_again).results) == ["B", "D", "E", "A"]
    assert list(changed(open_store, lambda state: None).results) == ["B", "D", "E", "A"]


def check_study_state_round_trips(open_store: OpenStore) -> None:
    filled, _ = evaluated_in_memory()
    study = filled.studies[STUDY]
    assert study.dosed and study.counted, "the sample must dose and count participants"
    open_store().save_study(study)
    loaded = open_store().load_study(STUDY)
    assert loaded is not None and loaded.to_json() == study.to_json()
    assert sorted(loaded.due_heap) == sorted((clock.due_at, sid) for sid, clock in study.clocks.items())
    open_store().save_study(StudyState("OTHER-STUDY"))
    again = open_store().load_study(STUDY)
    assert again is not None and again.to_json() == study.to_json()


def check_processed_keys_are_remembered_once(open_store: OpenStore) -> None:
    open_store().mark_processed("REC:ANAKINRA-AD:LB:K-1")
    open_store().mark_processed("REC:ANAKINRA-AD:LB:K-1")
    assert open_store().is_processed("REC:ANAKINRA-AD:LB:K-1") is True
    assert open_store().is_processed("REC:ANAKINRA-AD:LB:K-2") is False


def check_an_engine_per_record_gives_the_signals_of_one_in_memory_engine(open_store: OpenStore) -> None:
    """The live service builds a new engine for each record over the store (state only via the port)."""
    _, expected = evaluated_in_memory()
    records = sample_records()
    actual = [replay_step(Engine(packaged_study(), open_store()), events) for events in records]
    assert actual == expected
    assert sum(map(len, actual)) > 5
    assert [Engine(packaged_study(), open_store()).process(events) for events in records] == [[]] * len(records)


CONTRACT: tuple[Callable[[OpenStore], None], ...] = (
    check_unknown_keys_read_as_absent,
    check_participant_state_round_trips,
    check_participants_are_kept_per_study_and_subject,
    check_a_saved_state_replaces_the_previous_one,
    check_changed_results_read_back_in_their_order,
    check_study_state_round_trips,
    check_processed_keys_are_remembered_once,
    check_an_engine_per_record_gives_the_signals_of_one_in_memory_engine,
)
