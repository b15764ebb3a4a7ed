"""A participant's state in two tables: its lab results in ``participant_result`` rows, everything else in
one JSON row.

The results are most of a participant's state (59 of its 66 kB of JSON after the pipeline benchmark's 6,000
records) and a record adds one or a few of them. Written as one JSON value, every batch that touched a
participant rebuilt, sent and compressed all of it again (43 % of safety_rules' samples at 200 records/s,
most of a batch's time in PostgreSQL). Here the state row holds ``ParticipantState.to_json`` without its
results, and the result rows hold what changed in them since.

The result rows of a participant are a log, replayed in ``seq`` order onto an empty dict, which gives
``ParticipantState.results`` in its order (a dict: insertion order). A batch appends at most one row (a
*chunk*): a JSON array of entries, each the current value of a result (`LabValue`'s fields as an array;
set in its place if its key is there, else appended) or a key (a string: removed). A result removed and
added again in the batch is removed, then appended: last, as in the dict. One row per participant and batch,
not per result: a record adds 4.5 results on average (the pipeline's stream), and a row per result was most
of the rows, WAL and statement work this service cost PostgreSQL (session 5: BENCHMARKS.md). When the log
holds more dead entries than live ones, or too many rows, it is written again as one chunk, as it is when
the order cannot be kept by appending (the results dict replaced out of order) or the rows were not read.

A row written before this log (0007 to 0008) holds one result as a JSON object: it reads as the entry
setting that result, in the place its ``seq`` gives it, exactly as those rows meant. A state row written
before migration 0007 still holds its results in its JSON and has no result rows: it reads as before, and
its results become rows at its next write.

Comparing every result with its row took a tenth of safety_rules' CPU in a flood (a participant holds
hundreds of results; a record adds one or a few). So once a state's rows are written, its results become a
`TrackedResults`: the same dict, which notes the keys set or removed since, and `changes_of` looks at those
only. Whatever the tracking cannot follow (another mutator, the results dict replaced, as pruning does, rows
read from the database) takes the full comparison, after which tracking starts again.
"""

from __future__ import annotations

import dataclasses
import operator
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
from services.safety_rules.domain.state import AeFacts, DoseFact, InjectionSiteFacts

#: A log written again once it holds more dead entries than live ones plus this many, or more rows than
#: `MAX_ROWS` (reading a participant's rows back costs a row each).
DEAD_SLACK = 32
MAX_ROWS = 128


#: A state's adverse events, injection-site reactions and doses: the very objects, which the engine replaces
#: when they change and never changes in place (tests/safety_rules_service/test_participant_rows.py replays
#: the corpus with any second assignment to their fields failing; frozen dataclasses would say it too, but
#: build 9 times slower: 4 % of `trialwatch replay`'s NDJSON time).
Facts = tuple[tuple[AeFacts, ...], tuple[InjectionSiteFacts, ...], tuple[DoseFact, ...]]
#: The sections of a state's JSON in the row's ``facts`` column (migration 0009), in `Facts`' order.
FACT_SECTIONS = ("adverse_events", "injection_sites", "doses")


class Written:
    """What a participant's result rows hold: ``values``, the results their log gives, in its order (the
    very value objects they were written from: results are immutable named tuples), ``next_seq`` for the
    next row, and how many ``rows`` and ``entries`` (live or dead) the log has; and ``facts``, the facts
    the state row's ``facts`` column holds (None: not known, or the column is NULL)."""

    __slots__ = ("entries", "facts", "next_seq", "rows", "values")

    def __init__(self, values: dict[str, LabValue], next_seq: int = 0, rows: int = 0, entries: int = 0) -> None:
        self.values = values
        self.next_seq = next_seq
        self.rows = rows
        self.entries = entries
        self.facts: Facts | None = None

    def worn(self) -> bool:
        """Whether the log is to be written again as one chunk (see `DEAD_SLACK`)."""
        return self.entries - len(self.values) > len(self.values) + DEAD_SLACK or self.rows >= MAX_ROWS


#: A chunk's entry: a result set (or appended), or the key of a result removed.
Entry = LabValue | str


@dataclass(frozen=True)
class ResultChanges:
    """The result row to append for one participant: ``entries`` at ``seq`` (none: no row), after deleting
    every row of the participant when ``rewrite``; ``written`` is what the rows hold then."""

    seq: int
    entries: list[Entry]
    rewrite: bool
    written: Written


def state_json(state: ParticipantState) -> dict[str, Any]:
    """The state row's JSON: ``to_json`` of the state without its results (those are rows)."""
    return dataclasses.replace(state, results={}).to_json()


def state_text(state: ParticipantState) -> str:
    """The ``state`` column: `state_json` but for the `FACT_SECTIONS`, as JSON text serialised by orjson
    from the state's own objects: its facts are slots dataclasses and its times datetimes, both of which
    orjson writes as ``to_json`` does (field order, ``isoformat``), in C; building the dicts of ``to_json``
    first was a seventh of the CPU in a flood. tests/safety_rules_service/test_participant_rows.py holds it
    and `facts_text` together equal to ``state_json``."""
    return orjson.dumps(
        {
            "subject_id": state.subject_id,
            "results": [],
            "specimens": state.specimens,
            "anchors": {name: series.entries() for name, series in state.anchors.items()},
            "active": {"|".join(slot): signal for slot, signal in state.active.items()},
            "support": {rule: sorted(map("|".join, slots)) for rule, slots in state.support.items()},
            "latest_at": state.latest_at,
            "prune_at": state.prune_at,
        }
    ).decode()


def facts_of(state: ParticipantState) -> Facts:
    return tuple(state.adverse_events.values()), tuple(state.injection_sites.values()), tuple(state.doses.values())


def facts_text(facts: Facts) -> str:
    """The ``facts`` column: the `FACT_SECTIONS` of ``to_json`` (a section is the list of its facts)."""
    return orjson.dumps(dict(zip(FACT_SECTIONS, facts, strict=True))).decode()


def same_facts(facts: Facts, held: Facts | None) -> bool:
    """Whether ``facts`` are the very objects ``held`` (identity: equal times of different offsets are
    equal datetimes, yet not the same text)."""
    return held is not None and all(
        len(mine) == len(theirs) and all(map(operator.is_, mine, theirs))
        for mine, theirs in zip(facts, held, strict=True)
    )


def chunk_text(entries: Sequence[Entry]) -> str:
    """A chunk's JSON: each result as the array of its fields, in `LabValue`'s order and as ``to_json``
    writes each (times by ``isoformat``, a Decimal as its ``str``, tuples as arrays), by orjson in C; a key
    as a string. An array, not ``to_json``'s object: the field names were a third of every result's bytes.
    tests/safety_rules_service/test_participant_rows.py holds `entry_json` of it equal to ``to_json``."""
    return orjson.dumps(entries, default=_as_json).decode()


def _as_json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, LabValue):  # a named tuple: orjson leaves tuple subclasses to this function
        return tuple(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def entry_json(fields: Sequence[Any]) -> dict[str, Any]:
    """A chunk's result entry as ``LabValue.to_json`` gives it (what ``LabValue.from_json`` reads)."""
    return dict(zip(LabValue._fields, fields, strict=True))


def replayed(rows: Iterable[tuple[int, Any]]) -> tuple[dict[str, dict[str, Any]], int, int, int]:
    """The results the rows (``seq``, value) give, in ``seq`` order: each result's ``to_json`` by key in
    the dict's order; the next seq, and how many rows and entries they hold."""
    results: dict[str, dict[str, Any]] = {}
    next_seq = count = entries = 0
    for seq, value in rows:
        next_seq, count = seq + 1, count + 1
        if isinstance(value, dict):  # a row of 0007-0008: one result
            results[value["key"]] = value
            entries += 1
            continue
        for entry in value:
            if isinstance(entry, str):
                results.pop(entry, None)
            else:
                data = entry_json(entry)
                results[data["key"]] = data
        entries += len(value)
    return results, next_seq, count, entries


def state_of(
    data: Mapping[str, Any], facts: Mapping[str, Any] | None, rows: Sequence[tuple[int, Any]]
) -> tuple[ParticipantState, Written]:
    """The state from its row's JSON columns (``facts`` None: ``data`` holds them) and its result rows (in
    ``seq`` order), and what those rows hold."""
    results, next_seq, count, entries = replayed(rows)
    state = ParticipantState.from_json({**data, **(facts or {}), "results": [*data["results"], *results.values()]})
    held = {key: state.results[key] for key in results if key in state.results}
    written = Written(held, next_seq, count, entries)
    written.facts = None if facts is None else facts_of(state)
    return state, written


def changes(results: Mapping[str, LabValue], written: Written) -> ResultChanges:
    """The chunk that makes the rows give ``results``, in their order, given that they give ``written``;
    all of them again when the order cannot be kept by appending. ``written`` is left as it was."""
    held = written.values
    entries: list[Entry] = [key for key in held if key not in results]
    order = iter([key for key in held if key in results])
    appended: list[Entry] = []
    for key, value in results.items():
        old = held.get(key)
        if old is None:
            appended.append(value)
        elif appended or next(order) != key:  # an older result after a newer one, or two swapped
            return rewrite(results, written.next_seq)
        elif old is not value:
            entries.append(value)
    now = Written(dict(results), written.next_seq, written.rows, written.entries)
    return _appended(written, now, entries + appended)


def _appended(before: Written, now: Written, entries: list[Entry]) -> ResultChanges:
    """The chunk of ``entries`` at ``before.next_seq`` (none when empty); ``now`` (the rows then) counted
    with it. A worn log is written again whole instead."""
    if not entries:
        return ResultChanges(before.next_seq, [], rewrite=False, written=now)
    now.next_seq, now.rows, now.entries = before.next_seq + 1, before.rows + 1, before.entries + len(entries)
    if now.worn():
        return rewrite(now.values, before.next_seq)
    return ResultChanges(before.next_seq, entries, rewrite=False, written=now)


class TrackedResults(dict[str, LabValue]):
    """A participant's results that note which keys were set or removed since their rows were written
    (``synced``: the `Written` of those rows; the tracking holds only for it). A key set while absent is
    ``moved``: a dict puts it last, so its entry is appended. Mutators other than the item assignment,
    ``del`` and ``pop`` (which the engine uses) stop the tracking: the next write compares all."""

    __slots__ = ("lost", "moved", "synced", "touched")

    def __init__(self, results: Mapping[str, LabValue], synced: Written) -> None:
        super().__init__(results)
        self.synced = synced
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
        """`changes(self, written)` from the noted keys only (``written`` updated to what the rows then
        give); None when the tracking cannot tell (then nothing was changed)."""
        moved = [key for key in self.moved if key in self]
        tail = list(islice(reversed(self), len(moved)))
        if self.lost or written is not self.synced or set(tail) != set(moved):
            return None
        held = written.values
        entries: list[Entry] = []
        for key in self.touched:
            old = held.get(key)
            if old is None:
                continue
            if key in self.moved or key not in self:
                entries.append(key)
                del held[key]
            elif old is not (value := self[key]):
                held[key] = value
                entries.append(value)
        for key in reversed(tail):
            held[key] = self[key]
            entries.append(held[key])
        self.touched.clear()
        self.moved.clear()
        before = Written(held, written.next_seq, written.rows, written.entries)
        return _appended(before, written, entries)


def changes_of(state: ParticipantState, written: Written | None) -> ResultChanges:
    """`changes` of the state's results; all of them written again when its rows were not read (a new
    participant: rows left by a state deleted without them must not come back). The state's results are a
    `TrackedResults` of the rows written afterwards."""
    results = state.results
    change = None
    if written is not None and isinstance(results, TrackedResults):
        change = results.changes(written)
    if change is None:
        change = rewrite(results, 0) if written is None else changes(results, written)
    if not isinstance(results, TrackedResults) or results.synced is not change.written:
        state.results = TrackedResults(results, change.written)
    return change


def rewrite(results: Mapping[str, LabValue], seq: int) -> ResultChanges:
    """Every row deleted and the results written again as one chunk at ``seq``."""
    entries: list[Entry] = list(results.values())
    written = Written(dict(results), seq + 1 if entries else seq, 1 if entries else 0, len(entries))
    return ResultChanges(seq, entries, rewrite=True, written=written)


def read_participants(
    connection: Connection, study_id: str, subjects: Sequence[str]
) -> dict[str, tuple[ParticipantState, Written] | None]:
    """Each subject's state and what its result rows hold (None: no state row), one query per table."""
    row, result = tables.ParticipantState, tables.ParticipantResult
    query = select(row.subject_id, row.state, row.facts)
    query = query.where(row.study_id == study_id, row.subject_id.in_(subjects))
    states = {subject: (state, facts) for subject, state, facts in connection.execute(query)}
    rows = connection.execute(
        select(result.subject_id, result.seq, result.value)
        .where(result.study_id == study_id, result.subject_id.in_(subjects))
        .order_by(result.subject_id, result.seq)
    )
    results = _grouped(rows.all())
    found: dict[str, tuple[ParticipantState, Written] | None] = {}
    for subject_id in subjects:
        columns = states.get(subject_id)
        found[subject_id] = None if columns is None else state_of(*columns, results.get(subject_id, []))
    return found


#: Deletes joined on the primary key: a row-value ``IN`` list is only filtered, over every row of the study.
DELETE_PARTICIPANTS = text(
    "DELETE FROM safety_rules.participant_result AS r"
    " USING unnest(CAST(:studies AS text[]), CAST(:subjects AS text[])) AS d(study_id, subject_id)"
    " WHERE r.study_id = d.study_id AND r.subject_id = d.subject_id"
)
#: One statement of the same text whatever the number of rows (a multi-row VALUES list is a new statement
#: for PostgreSQL to parse and plan at each size; executemany runs the executor once per row). A plain
#: insert: a chunk's ``seq`` is past every row of the participant (read, or written by this service with
#: the row lock of its study held), so a conflict would be a bug, which fails the batch (and clears the
#: cache) rather than being absorbed.
INSERT_CHUNKS = text(
    "INSERT INTO safety_rules.participant_result (study_id, subject_id, seq, value)"
    " SELECT d.study_id, d.subject_id, d.seq, CAST(d.value AS json)"
    " FROM unnest(CAST(:studies AS text[]), CAST(:subjects AS text[]), CAST(:seqs AS int[]), CAST(:values AS text[]))"
    " AS d(study_id, subject_id, seq, value)"
)


def write_results(connection: Connection, todo: Sequence[tuple[tuple[str, str], ResultChanges]]) -> None:
    """The result rows of some participants ((study, subject), changes): the deletes of those written again
    first, then one insert of every chunk."""
    everything = [key for key, change in todo if change.rewrite]
    if everything:
        studies, subjects = zip(*everything, strict=True)
        connection.execute(DELETE_PARTICIPANTS, {"studies": list(studies), "subjects": list(subjects)})
    rows = [(*key, change.seq, chunk_text(change.entries)) for key, change in todo if change.entries]
    if rows:
        studies, subjects, seqs, values = zip(*rows, strict=True)
        columns = {"studies": list(studies), "subjects": list(subjects), "seqs": list(seqs), "values": list(values)}
        connection.execute(INSERT_CHUNKS, columns)


def _grouped(rows: Iterable[tuple[str, int, Any]]) -> dict[str, list[tuple[int, Any]]]:
    """Result rows ``(subject_id, seq, value)`` per subject, in the order given."""
    found: dict[str, list[tuple[int, Any]]] = {}
    for subject_id, seq, value in rows:
        found.setdefault(subject_id, []).append((seq, value))
    return found
