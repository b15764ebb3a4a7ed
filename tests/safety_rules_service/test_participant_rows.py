"""The result rows `changes_of` writes: after any sequence of the engine's mutations, the rows' log (replayed
in ``seq`` order) gives exactly the participant's results in their dict order, whether the tracked results or
the full comparison worked them out, with one row per batch at most (no database: the rows are a dict here;
the SQL is in the integration tests)."""

from __future__ import annotations

import dataclasses
import io
import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from safety_rules_service.store_contract import evaluated_in_memory
from services.safety_rules.adapters.participant_rows import (
    MAX_ROWS,
    Entry,
    ResultChanges,
    TrackedResults,
    changes_of,
    chunk_text,
    entry_json,
    facts_of,
    facts_text,
    replayed,
    same_facts,
    state_json,
    state_text,
)
from services.safety_rules.domain import ParticipantState, packaged_study
from services.safety_rules.domain.results import LabValue, Series
from services.safety_rules.domain.state import ActiveSignal, AeFacts, DoseFact, InjectionSiteFacts
from trialwatch.replay import replay

Rows = dict[int, list[Entry]]
FIXTURES = [Path(__file__).resolve().parents[1] / "fixtures" / name for name in ("corpus", "inputs")]


def alt(key: str, value: int) -> LabValue:
    at = datetime(2026, 1, 5, tzinfo=UTC)
    return LabValue(key, "ALT", at, Decimal(value), None, "U/L", None, Decimal(40), "final", "S", key)


def applied(rows: Rows, change: ResultChanges) -> Rows:
    """What the table holds after `write_results` wrote ``change`` (a rewrite deletes every row first; the
    chunk is a plain insert: its ``seq`` must be new)."""
    kept = {} if change.rewrite else dict(rows)
    if change.entries:
        assert change.seq not in kept, "a chunk's seq is past every row"
        kept[change.seq] = change.entries
    return kept


def in_seq_order(rows: Rows) -> list[tuple[str, LabValue]]:
    """The results the rows give, through their JSON as the database returns it."""
    stored = [(seq, orjson.loads(chunk_text(entries))) for seq, entries in sorted(rows.items())]
    return [(key, LabValue.from_json(data)) for key, data in replayed(stored)[0].items()]


def test_a_written_state_tracks_its_results_and_appends_one_row_with_the_new_ones() -> None:
    state = ParticipantState("AD-1", results={key: alt(key, 10) for key in "ABC"})
    first = changes_of(state, None)
    assert first.rewrite and (first.seq, first.entries) == (0, [alt(key, 10) for key in "ABC"])
    assert isinstance(state.results, TrackedResults)
    state.results["D"] = alt("D", 11)
    state.results["E"] = alt("E", 12)
    second = changes_of(state, first.written)
    assert (second.seq, second.entries, second.rewrite) == (1, [alt("D", 11), alt("E", 12)], False)
    assert changes_of(state, second.written).entries == [], "nothing changed: no row"


def test_a_result_removed_and_added_again_goes_last_without_rewriting_the_others() -> None:
    state = ParticipantState("AD-1", results={key: alt(key, 10) for key in "ABC"})
    rows = applied({}, written := changes_of(state, None))
    del state.results["A"]
    state.results["A"] = alt("A", 12)  # a dict puts it last
    state.results["B"] = alt("B", 13)  # keeps its place
    change = changes_of(state, written.written)
    assert not change.rewrite and change.seq == 1
    assert sorted(map(str, change.entries)) == sorted(map(str, ["A", alt("B", 13), alt("A", 12)]))
    assert change.entries.index("A") < change.entries.index(alt("A", 12)), "removed, then appended"
    assert in_seq_order(applied(rows, change)) == list(state.results.items())


def test_replaced_results_are_compared_in_full_and_tracked_again() -> None:
    """Pruning replaces the dict (`retention.prune_results`): the full comparison then, tracking after."""
    state = ParticipantState("AD-1", results={key: alt(key, 10) for key in "ABCD"})
    rows = applied({}, written := changes_of(state, None))
    state.results = {key: value for key, value in state.results.items() if key in "BD"}
    change = changes_of(state, written.written)
    assert not change.rewrite and change.entries == ["A", "C"], "two removals in one appended row"
    assert isinstance(state.results, TrackedResults)
    assert in_seq_order(applied(rows, change)) == list(state.results.items())


def test_results_reordered_out_of_place_are_written_again_as_one_row() -> None:
    state = ParticipantState("AD-1", results={key: alt(key, 10) for key in "ABC"})
    rows = applied({}, written := changes_of(state, None))
    state.results = dict(reversed(state.results.items()))
    change = changes_of(state, written.written)
    assert change.rewrite and change.entries == [alt(key, 10) for key in "CBA"]
    assert applied(rows, change).keys() == {change.seq}


def test_a_log_with_more_dead_entries_than_live_ones_or_too_many_rows_is_written_again() -> None:
    state = ParticipantState("AD-1", results={"A": alt("A", 0)})
    change = changes_of(state, None)
    rows, written, rewrites = applied({}, change), change.written, 0
    for batch in range(1, 3 * MAX_ROWS):
        state.results["A"] = alt("A", batch)  # a correction: the old entry is dead
        if batch % 2:
            state.results[f"N{batch}"] = alt(f"N{batch}", 1)
        change = changes_of(state, written)
        rows, written, rewrites = applied(rows, change), change.written, rewrites + change.rewrite
        assert in_seq_order(rows) == list(state.results.items())
        assert len(rows) <= MAX_ROWS and written.entries - len(written.values) <= len(written.values) + 32
    assert rewrites >= 2


def test_rows_of_one_result_each_from_before_the_log_read_in_their_seq_order() -> None:
    """0007's rows: one ``to_json`` object per row, a changed one rewritten at its seq; then chunks after."""
    old = [(0, alt("A", 1).to_json()), (1, alt("B", 1).to_json()), (2, alt("C", 1).to_json())]
    chunk = [(3, orjson.loads(chunk_text(["A", alt("B", 2), alt("A", 3)])))]
    results, next_seq, count, entries = replayed([*old, *chunk])
    assert list(results) == ["B", "C", "A"] and results["B"] == alt("B", 2).to_json()
    assert (next_seq, count, entries) == (4, 4, 6)


def test_any_sequence_of_mutations_leaves_the_rows_in_the_order_of_the_results() -> None:
    chooser = random.Random(4)
    tracked = 0
    for _ in range(200):
        state = ParticipantState("AD-1", results={key: alt(key, 0) for key in "ABCDE"})
        change = changes_of(state, None)
        rows, written = applied({}, change), change.written
        for _ in range(6):  # batches
            for _ in range(chooser.randrange(6)):  # the engine's mutations within one batch
                key, action = chooser.choice("ABCDEFGH"), chooser.random()
                if action < 0.5:
                    state.results[key] = alt(key, chooser.randrange(3))
                elif action < 0.7:
                    state.results.pop(key, None)
                elif action < 0.8 and key in state.results:
                    del state.results[key]
                elif action < 0.85:
                    state.results.update({key: alt(key, 7)})  # not tracked: the full comparison
                elif action < 0.9:
                    state.results = dict(reversed(state.results.items()))
            tracked += isinstance(state.results, TrackedResults) and not state.results.lost
            before = dict(written.values)
            change = changes_of(state, written)
            rows, written = applied(rows, change), change.written
            assert in_seq_order(rows) == list(state.results.items()), (before, change)
            assert written.values == state.results and list(written.values) == list(state.results)
    assert tracked > 500, "most batches must take the tracked path"


def test_the_state_text_is_the_json_of_the_states_own_serialisation() -> None:
    """orjson writes the state's objects (slots dataclasses, datetimes) as ``ParticipantState.to_json``
    does; a field added to the state must be added to `state_text` too."""
    filled, _ = evaluated_in_memory()
    states = list(filled.participants.values())
    assert any(state.active and state.adverse_events and state.doses for state in states), "a varied sample"
    odd = ParticipantState("AD-ODD", latest_at=datetime(2026, 1, 5, 1, 2, 3, 456, tzinfo=timezone(timedelta(hours=2))))
    odd.record_dose(DoseFact(datetime(2026, 1, 4, 23, 59, 59, 999999, tzinfo=UTC), False, "REC:EX:1"))
    odd.activate(("LAB", "k"), ActiveSignal("sig", "LAB-ALT", ("a", "b"), ("k",), datetime(2026, 1, 5, tzinfo=UTC)))
    odd.anchors["ANC"] = Series([datetime(2026, 1, 5, 0, 0, 0, 1, tzinfo=UTC)], ["k"])
    odd.support["R"] = {("A", "x|y"), ("B", "z")}
    for state in [*states, odd]:
        assert {**orjson.loads(state_text(state)), **orjson.loads(facts_text(facts_of(state)))} == state_json(state)
    written = {"results", "first_dose", "first_dose_start", "baselines", "users", "missed", "series"}
    assert {field.name for field in dataclasses.fields(ParticipantState)} - written == {
        "subject_id",
        "specimens",
        "anchors",
        "adverse_events",
        "injection_sites",
        "doses",
        "active",
        "support",
        "latest_at",
        "prune_at",
    }, "state_text writes exactly these fields of the state row (the others are rows, or rebuilt on load)"


def test_a_chunks_result_entries_are_the_json_of_the_results_own_serialisation() -> None:
    filled, _ = evaluated_in_memory()
    values = [value for state in filled.participants.values() for value in state.results.values()]
    assert any(value.lln is not None and value.uln is not None for value in values), "a varied sample"
    derived = {"derived": True, "inputs": ("W", "P"), "sources": ("a", "b")}
    odd = alt("K", 1)._replace(value=None, lln=Decimal("0.10"), comparator="<", issue="unit", **derived)
    for value in [
        *values,
        odd,
        odd._replace(at=datetime(2026, 1, 5, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=-5)))),
    ]:
        [entry, key] = orjson.loads(chunk_text([value, value.key]))
        assert entry_json(entry) == value.to_json() and key == value.key


def test_facts_are_the_same_only_as_the_very_objects_written() -> None:
    """The ``facts`` column is left out of an update only when the state holds the very fact objects it
    was written from: a fact replaced by an equal one at another UTC offset (an equal datetime, another
    text) is written again, and so is one added, removed or replaced."""
    state = ParticipantState("AD-1")
    state.record_dose(DoseFact(datetime(2026, 1, 5, 8, tzinfo=UTC), True, "REC:EX:1"))
    held = facts_of(state)
    assert same_facts(facts_of(state), held) and not same_facts(held, None)
    shifted = datetime(2026, 1, 5, 9, tzinfo=timezone(timedelta(hours=1)))
    state.doses["REC:EX:1"] = DoseFact(shifted, True, "REC:EX:1")
    assert state.doses["REC:EX:1"] == held[2][0] and not same_facts(facts_of(state), held)
    state.doses["REC:EX:1"] = held[2][0]
    assert same_facts(facts_of(state), held)
    state.record_dose(DoseFact(datetime(2026, 1, 6, 8, tzinfo=UTC), True, "REC:EX:2"))
    assert not same_facts(facts_of(state), held)


def test_the_engine_replaces_facts_and_never_changes_one_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """`same_facts` compares identities: a fact changed in place would never be written. Replaying the
    corpus (every family of record, corrections and deletions included) with a second assignment to any
    field of a fact failing proves the engine replaces them."""
    built = [0]

    def assign_once(fact: object, name: str, value: object) -> None:
        assert not hasattr(fact, name), f"{type(fact).__name__}.{name} changed in place"
        built[0] += name == "source"
        object.__setattr__(fact, name, value)

    for cls in (AeFacts, InjectionSiteFacts, DoseFact):
        monkeypatch.setattr(cls, "__setattr__", assign_once)
    files = [path for folder in FIXTURES for path in sorted(folder.iterdir()) if path.is_file()]
    inputs = [(path.name, path.open("rb")) for path in files]
    try:
        assert replay(inputs, packaged_study(), io.BytesIO(), io.BytesIO()) in (0, 65)
    finally:
        for _, stream in inputs:
            stream.close()
    assert built[0] > 40, "the corpus builds many facts"
