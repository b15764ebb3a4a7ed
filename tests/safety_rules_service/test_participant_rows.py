"""The result rows `changes_of` writes: after any sequence of the engine's mutations, the rows (by ``seq``)
hold exactly the participant's results in their dict order, whether the tracked results or the full
comparison worked them out (no database: the rows are a dict here; the SQL is in the integration tests)."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import orjson

from safety_rules_service.store_contract import evaluated_in_memory
from services.safety_rules.adapters.participant_rows import (
    ResultChanges,
    TrackedResults,
    Written,
    changes_of,
    result_text,
    state_json,
    state_text,
)
from services.safety_rules.domain import ParticipantState
from services.safety_rules.domain.results import LabValue, Series
from services.safety_rules.domain.state import ActiveSignal, DoseFact

Rows = dict[int, LabValue]


def alt(key: str, value: int) -> LabValue:
    at = datetime(2026, 1, 5, tzinfo=UTC)
    return LabValue(key, "ALT", at, Decimal(value), None, "U/L", None, Decimal(40), "final", "S", key)


def applied(rows: Rows, change: ResultChanges) -> Rows:
    """What the table holds after `write_results` wrote ``change`` (deletes first, then the upserts)."""
    kept = {} if change.rewrite else {seq: value for seq, value in rows.items() if seq not in change.deletes}
    return kept | dict(change.upserts)


def in_seq_order(rows: Rows) -> list[tuple[str, LabValue]]:
    return [(value.key, value) for _, value in sorted(rows.items())]


def test_a_written_state_tracks_its_results_and_writes_only_the_new_one() -> None:
    state = ParticipantState("AD-1", results={key: alt(key, 10) for key in "ABC"})
    first = changes_of(state, None)
    assert first.rewrite and [seq for seq, _ in first.upserts] == [0, 1, 2]
    assert isinstance(state.results, TrackedResults)
    state.results["D"] = alt("D", 11)
    second = changes_of(state, first.written)
    assert (second.upserts, second.deletes, second.rewrite) == ([(3, alt("D", 11))], [], False)
    assert changes_of(state, second.written).upserts == []


def test_a_result_removed_and_added_again_goes_last_without_rewriting_the_others() -> None:
    state = ParticipantState("AD-1", results={key: alt(key, 10) for key in "ABC"})
    rows = applied({}, written := changes_of(state, None))
    del state.results["A"]
    state.results["A"] = alt("A", 12)  # a dict puts it last
    change = changes_of(state, written.written)
    assert not change.rewrite and change.deletes == [0] and change.upserts == [(3, alt("A", 12))]
    assert in_seq_order(applied(rows, change)) == list(state.results.items())


def test_replaced_results_are_compared_in_full_and_tracked_again() -> None:
    """Pruning replaces the dict (`retention.prune_results`): the full comparison then, tracking after."""
    state = ParticipantState("AD-1", results={key: alt(key, 10) for key in "ABCD"})
    rows = applied({}, written := changes_of(state, None))
    state.results = {key: value for key, value in state.results.items() if key in "BD"}
    change = changes_of(state, written.written)
    assert sorted(change.deletes) == [0, 2] and change.upserts == []
    assert isinstance(state.results, TrackedResults)
    assert in_seq_order(applied(rows, change)) == list(state.results.items())


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
            before: Written = dict(written)
            change = changes_of(state, written)
            rows, written = applied(rows, change), change.written
            assert in_seq_order(rows) == list(state.results.items()), (before, change)
            assert {key: value for key, (_, value) in written.items()} == state.results
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
        assert orjson.loads(state_text(state)) == state_json(state)
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


def test_the_result_text_is_the_json_of_the_results_own_serialisation() -> None:
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
        assert orjson.loads(result_text(value)) == value.to_json()
