"""A participant's state in two tables: its lab results a row each, everything else in one JSON row.

The results are most of a participant's state (59 of its 66 kB of JSON after the pipeline benchmark's 6,000
records) and a record adds one or a few of them. Written as one JSON value, every batch that touched a
participant rebuilt, sent and compressed all of it again (43 % of safety_rules' samples at 200 records/s,
most of a batch's time in PostgreSQL). Here the state row holds ``ParticipantState.to_json`` without its
results, and ``participant_result`` holds one row per result, written only when it is new or changed.

The rows keep the order of ``ParticipantState.results`` (a dict: insertion order), which ``from_json``
rebuilds from the order of the list: ``seq`` orders them. A new result is appended after the others; a
changed one keeps its place (as in a dict). `changes` compares the results with what their rows hold
(`Written`: the seq and the very value object each row was written from; results are immutable named
tuples); when the order cannot be kept that way (a result removed and added again goes last in a dict),
the participant's rows are all written again.

A state row written before migration 0007 still holds its results in its JSON and has no result rows:
it reads as before, and its results become rows at its next write.

Comparing every result with its row took a tenth of safety_rules' CPU in a flood (a participant holds
hundreds of results; a record adds one or a few). So once a state's rows are written, its results become a
`TrackedResults`: the same dict, which notes the keys set or removed since, and `changes_of` looks at those
only. Whatever the tracking cannot follow (another mutator, the results dict replaced, as pruning does, rows
read from the database) takes the full comparison, after which tracking starts again.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from typing import Any

import orjson
from sqlalchemy import Connection, select, text

from services.safety_rules.adapters import tables
from services.safety_rules.domain import ParticipantState
from services.safety_rules.domain.results import LabValue

#: Per result key: the ``seq`` of its row and the value that row was written from.
Written = dict[str, tuple[int, LabValue]]


@dataclass(frozen=True)
class ResultChanges:
    """The result rows of one participant to write: ``upserts`` (seq, value), ``deletes`` (seqs), or all of
    them again (``rewrite``: delete every row of the participant first)."""

    upserts: list[tuple[int, LabValue]]
    deletes: list[int]
    rewrite: bool
    written: Written


def state_json(state: ParticipantState) -> dict[str, Any]:
    """The state row's JSON: ``to_json`` of the state without its results (those are rows)."""
    return dataclasses.replace(state, results={}).to_json()


def state_text(state: ParticipantState) -> str:
    """`state_json` as JSON text, serialised by orjson from the state's own objects: its facts are slots
    dataclasses and its times datetimes, both of which orjson writes as ``to_json`` does (field order,
    ``isoformat``), in C; building the dicts of ``to_json`` first was a seventh of the CPU in a flood.
    tests/safety_rules_service/test_participant_rows.py holds it equal to ``state_json``."""
    return orjson.dumps(
        {
            "subject_id": state.subject_id,
            "results": [],
            "specimens": state.specimens,
            "anchors": {name: series.entries() for name, series in state.anchors.items()},
            "adverse_events": list(state.adverse_events.values()),
            "injection_sites": list(state.injection_sites.values()),
            "doses": list(state.doses.values()),
            "active": {"|".join(slot): signal for slot, signal in state.active.items()},
            "support": {rule: sorted(map("|".join, slots)) for rule, slots in state.support.items()},
            "latest_at": state.latest_at,
            "prune_at": state.prune_at,
        }
    ).decode()


def result_text(value: LabValue) -> str:
    """``json_text(value.to_json())``, by orjson from the named tuple's fields (its times, tuples and
    numbers as ``to_json`` writes them; a Decimal as its ``str``); held equal by the same test."""
    return orjson.dumps(dict(zip(LabValue._fields, value, strict=True)), default=_decimal_text).decode()


def _decimal_text(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def state_of(data: Mapping[str, Any], rows: Sequence[tuple[int, dict[str, Any]]]) -> tuple[ParticipantState, Written]:
    """The state from its row's JSON and its result rows (in ``seq`` order), and what those rows hold."""
    state = ParticipantState.from_json({**data, "results": [*data["results"], *(value for _, value in rows)]})
    written: Written = {}
    for seq, value in rows:
        key = value["key"]
        if key in state.results:
            written[key] = (seq, state.results[key])
    return state, written


def changes(results: Mapping[str, LabValue], written: Written) -> ResultChanges:
    """What to write so that the rows hold ``results``, in their order, given that they hold ``written``."""
    next_seq = max((seq for seq, _ in written.values()), default=-1) + 1
    upserts: list[tuple[int, LabValue]] = []
    now: Written = {}
    last, appended = -1, False
    for key, value in results.items():
        old = written.get(key)
        if old is None:
            appended = True
            now[key] = (next_seq, value)
            upserts.append(now[key])
            next_seq += 1
            continue
        seq, held = old
        if appended or seq < last:  # an older result after a newer one: the rows cannot keep this order
            return rewrite(results)
        last = seq
        if held is value:
            now[key] = old
        else:
            now[key] = (seq, value)
            upserts.append(now[key])
    deletes = [seq for key, (seq, _) in written.items() if key not in results]
    return ResultChanges(upserts, deletes, rewrite=False, written=now)


class TrackedResults(dict[str, LabValue]):
    """A participant's results that note which keys were set or removed since their rows were written
    (``synced``: the `Written` of those rows; the tracking holds only for it). A key set while absent is
    ``moved``: a dict puts it last, so its row gets the next ``seq``. Mutators other than the item
    assignment, ``del`` and ``pop`` (which the engine uses) stop the tracking: the next write compares all."""

    __slots__ = ("lost", "moved", "next_seq", "synced", "touched")

    def __init__(self, results: Mapping[str, LabValue], synced: Written) -> None:
        super().__init__(results)
        self.synced = synced
        self.next_seq = max((seq for seq, _ in synced.values()), default=-1) + 1
        self.touched: set[str] = set()
        self.moved: set[str] = set()
        self.lost = False

    def __setitem__(self, key: str, value: LabValue) -> None:
        if key not in self:
            self.moved.add(key)
        self.touched.add(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self.touched.add(key)

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            self.touched.add(key)
        return super().pop(key, *default)

    def clear(self) -> None:
        self.lost = True
        super().clear()

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.lost = True
        super().update(*args, **kwargs)

    def setdefault(self, key: str, default: LabValue) -> LabValue:
        self.lost = True
        return super().setdefault(key, default)

    def popitem(self) -> tuple[str, LabValue]:
        self.lost = True
        return super().popitem()

    def __ior__(self, other: Any) -> TrackedResults:  # type: ignore[override,misc]
        self.lost = True
        super().update(other)
        return self

    def changes(self, written: Written) -> ResultChanges | None:
        """`changes(self, written)` from the noted keys only (and ``written`` updated to what the rows now
        hold); None when the tracking cannot tell (then nothing was changed)."""
        moved = [key for key in self.moved if key in self]
        tail = list(islice(reversed(self), len(moved)))
        if self.lost or written is not self.synced or set(tail) != set(moved):
            return None
        upserts: list[tuple[int, LabValue]] = []
        deletes: list[int] = []
        for key in self.touched:
            old = written.get(key)
            if old is None:
                continue
            if key in self.moved or key not in self:
                deletes.append(old[0])
                del written[key]
            elif old[1] is not (value := self[key]):
                written[key] = (old[0], value)
                upserts.append(written[key])
        for key in reversed(tail):
            written[key] = (self.next_seq, self[key])
            upserts.append(written[key])
            self.next_seq += 1
        self.touched.clear()
        self.moved.clear()
        return ResultChanges(upserts, deletes, rewrite=False, written=written)


def changes_of(state: ParticipantState, written: Written | None) -> ResultChanges:
    """`changes` of the state's results; all rows written again when its rows were not read (a new
    participant: rows left by a state deleted without them must not come back). The state's results are a
    `TrackedResults` of the rows written afterwards."""
    results = state.results
    change = None
    if written is not None and isinstance(results, TrackedResults):
        change = results.changes(written)
    if change is None:
        change = rewrite(results) if written is None else changes(results, written)
        state.results = TrackedResults(results, change.written)
    return change


def rewrite(results: Mapping[str, LabValue]) -> ResultChanges:
    """Every row written again, numbered from 0 in the results' order."""
    now: Written = {key: (seq, value) for seq, (key, value) in enumerate(results.items())}
    return ResultChanges(list(now.values()), [], rewrite=True, written=now)


def read_participants(
    connection: Connection, study_id: str, subjects: Sequence[str]
) -> dict[str, tuple[ParticipantState, Written] | None]:
    """Each subject's state and what its result rows hold (None: no state row), one query per table."""
    row, result = tables.ParticipantState, tables.ParticipantResult
    query = select(row.subject_id, row.state).where(row.study_id == study_id, row.subject_id.in_(subjects))
    states: dict[str, dict[str, Any]] = {subject: state for subject, state in connection.execute(query)}
    rows = connection.execute(
        select(result.subject_id, result.seq, result.value)
        .where(result.study_id == study_id, result.subject_id.in_(subjects))
        .order_by(result.subject_id, result.seq)
    )
    results = _grouped(rows.all())
    found: dict[str, tuple[ParticipantState, Written] | None] = {}
    for subject_id in subjects:
        data = states.get(subject_id)
        found[subject_id] = None if data is None else state_of(data, results.get(subject_id, []))
    return found


#: Deletes joined on the primary key: a row-value ``IN`` list is only filtered, over every row of the study.
DELETE_PARTICIPANTS = text(
    "DELETE FROM safety_rules.participant_result AS r"
    " USING unnest(CAST(:studies AS text[]), CAST(:subjects AS text[])) AS d(study_id, subject_id)"
    " WHERE r.study_id = d.study_id AND r.subject_id = d.subject_id"
)
DELETE_ROWS = text(
    "DELETE FROM safety_rules.participant_result AS r"
    " USING unnest(CAST(:studies AS text[]), CAST(:subjects AS text[]), CAST(:seqs AS int[]))"
    " AS d(study_id, subject_id, seq)"
    " WHERE r.study_id = d.study_id AND r.subject_id = d.subject_id AND r.seq = d.seq"
)
#: One statement of the same text whatever the number of rows (a multi-row VALUES list is a new statement
#: for PostgreSQL to parse and plan at each size; executemany runs the executor once per row).
UPSERT_RESULTS = text(
    "INSERT INTO safety_rules.participant_result (study_id, subject_id, seq, value)"
    " SELECT d.study_id, d.subject_id, d.seq, CAST(d.value AS json)"
    " FROM unnest(CAST(:studies AS text[]), CAST(:subjects AS text[]), CAST(:seqs AS int[]), CAST(:values AS text[]))"
    " AS d(study_id, subject_id, seq, value)"
    " ON CONFLICT (study_id, subject_id, seq) DO UPDATE SET value = excluded.value"
)


def write_results(connection: Connection, todo: Sequence[tuple[tuple[str, str], ResultChanges]]) -> None:
    """The result rows of some participants ((study, subject), changes): deletes first (a rewrite deletes
    all of the participant's), then one upsert for the new and changed ones."""
    everything = [key for key, change in todo if change.rewrite]
    if everything:
        studies, subjects = zip(*everything, strict=True)
        connection.execute(DELETE_PARTICIPANTS, {"studies": list(studies), "subjects": list(subjects)})
    some = [(*key, seq) for key, change in todo for seq in change.deletes]
    if some:
        studies, subjects, seqs = zip(*some, strict=True)
        connection.execute(DELETE_ROWS, {"studies": list(studies), "subjects": list(subjects), "seqs": list(seqs)})
    rows = [(*key, seq, result_text(value)) for key, change in todo for seq, value in change.upserts]
    if rows:
        studies, subjects, seqs, values = zip(*rows, strict=True)
        columns = {"studies": list(studies), "subjects": list(subjects), "seqs": list(seqs), "values": list(values)}
        connection.execute(UPSERT_RESULTS, columns)


def _grouped(rows: Iterable[tuple[str, int, dict[str, Any]]]) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Result rows ``(subject_id, seq, value)`` per subject, in the order given."""
    found: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for subject_id, seq, value in rows:
        found.setdefault(subject_id, []).append((seq, value))
    return found
