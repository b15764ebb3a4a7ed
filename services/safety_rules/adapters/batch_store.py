"""The engine's `StateStore` for a batch of records evaluated in one transaction.

`SqlStateStore` queries on every call and writes on every save; for a batch that is several round trips
per record. This store reads the rows of the records to come up front (`prefetch`: one query for their
participants' states, one for their results, one for their source keys), then keeps the states as objects
while the engine works on them, exactly as `InMemoryStateStore` does for `trialwatch replay`, and writes
each saved participant once in `flush()` (of its results only those new or changed: `participant_rows`),
which also lets go of them (the caller bounds how many it holds at a time; the study's state is kept).
A key it was not told about is read when the engine asks for it. Whatever it writes is in the caller's
transaction: a batch that fails leaves no trace, and this store is dropped.
Given a `ParticipantCache`, `prefetch` takes the states whose rows are unchanged from it (reading only
the rows' ``xmin``) and `flush` puts the states it wrote back, with their rows' new ``xmin``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnClause, Connection, Text, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert

from services.safety_rules.adapters import tables
from services.safety_rules.adapters.participant_cache import ParticipantCache
from services.safety_rules.adapters.participant_rows import (
    Written,
    changes_of,
    read_participants,
    state_json,
    write_results,
)
from services.safety_rules.domain import ParticipantState, StudyState

StudyJson = dict[str, Any]
Key = tuple[str, str]
#: The id of the transaction that wrote the row (PostgreSQL system column), as text.
ROW_XMIN: ColumnClause[str] = literal_column("xmin::text", Text)
#: Participants written per statement by `flush()`.
FLUSH_CHUNK = 64


class BatchStateStore:
    """`services.safety_rules.domain.StateStore` over one transaction's connection, written at `flush()`.

    ``locked`` is the study row `lock_study` already read (and locked) in this transaction.
    """

    def __init__(
        self,
        connection: Connection,
        locked: tuple[str, StudyJson] | None = None,
        cache: ParticipantCache | None = None,
    ) -> None:
        self._connection = connection
        self._cache = cache
        self._participants: dict[Key, ParticipantState | None] = {}
        self._written: dict[Key, Written] = {}
        self._studies: dict[str, tuple[StudyJson | None, StudyState | None]] = {}
        if locked is not None:
            self._studies[locked[0]] = (locked[1], None)
        self._processed: dict[str, bool] = {}
        self._marked: list[str] = []
        self._dirty: set[Key] = set()
        self._dirty_studies: set[str] = set()

    def prefetch(self, study_id: str, subject_ids: Iterable[str], dedup_keys: Iterable[str]) -> None:
        """Reads the participants and the processed source keys a batch will ask for, one query each."""
        subjects, keys = sorted(set(subject_ids)), sorted(set(dedup_keys))
        if self._cache is not None:
            subjects = self._take_cached(study_id, subjects, self._cache)
        if subjects:
            self._read(study_id, subjects)
        if keys:
            source = tables.ProcessedSource
            known = set(self._connection.execute(select(source.dedup_key).where(source.dedup_key.in_(keys))).scalars())
            self._processed.update({key: key in known for key in keys})

    def _take_cached(self, study_id: str, subjects: list[str], cache: ParticipantCache) -> list[str]:
        """Takes the cached states whose rows are unchanged; returns the subjects still to read."""
        row = tables.ParticipantState
        query = select(row.subject_id, ROW_XMIN).where(row.study_id == study_id, row.subject_id.in_(subjects))
        written: dict[str, str] = {subject: xmin for subject, xmin in self._connection.execute(query)}
        missing: list[str] = []
        for subject_id in subjects:
            key = (study_id, subject_id)
            row_xmin = written.get(subject_id)
            cached = None if row_xmin is None else cache.take(key, row_xmin)
            if cached is None:
                missing.append(subject_id)
            else:
                self._participants[key], self._written[key] = cached
        return missing

    def _read(self, study_id: str, subjects: list[str]) -> None:
        for subject_id, found in read_participants(self._connection, study_id, subjects).items():
            key = (study_id, subject_id)
            if found is None:
                self._participants[key] = None
            else:
                self._participants[key], self._written[key] = found

    def load_participant(self, study_id: str, subject_id: str) -> ParticipantState | None:
        """See `StateStore`."""
        key = (study_id, subject_id)
        if key not in self._participants:
            self._read(study_id, [subject_id])
        return self._participants[key]

    def save_participant(self, study_id: str, state: ParticipantState) -> None:
        """See `StateStore`; written by `flush()`."""
        key = (study_id, state.subject_id)
        self._participants[key] = state
        self._dirty.add(key)

    def load_study(self, study_id: str) -> StudyState | None:
        """See `StateStore`."""
        if study_id not in self._studies:
            row = tables.StudyState
            data = self._connection.execute(select(row.state).where(row.study_id == study_id)).scalar_one_or_none()
            self._studies[study_id] = (data, None)
        data, state = self._studies[study_id]
        if state is None and data is not None:
            state = StudyState.from_json(data)
            self._studies[study_id] = (data, state)
        return state

    def save_study(self, state: StudyState) -> None:
        """See `StateStore`; written by `flush()`."""
        data, _ = self._studies.get(state.study_id, (None, None))
        self._studies[state.study_id] = (data, state)
        self._dirty_studies.add(state.study_id)

    def is_processed(self, dedup_key: str) -> bool:
        """See `StateStore`."""
        if dedup_key not in self._processed:
            source = tables.ProcessedSource
            query = select(source.dedup_key).where(source.dedup_key == dedup_key)
            self._processed[dedup_key] = self._connection.execute(query).first() is not None
        return self._processed[dedup_key]

    def mark_processed(self, dedup_key: str) -> None:
        """See `StateStore`; written by `flush()`."""
        if not self._processed.get(dedup_key):
            self._marked.append(dedup_key)
        self._processed[dedup_key] = True

    def flush(self) -> None:
        """Writes every saved participant, each row once, the study if it changed and the new processed
        keys; then forgets the participants (read again if asked for)."""
        self._flush_participants()
        self._flush_studies()
        if self._marked:
            source = tables.ProcessedSource
            rows = [{"dedup_key": key} for key in self._marked]
            self._connection.execute(insert(source).on_conflict_do_nothing(), rows)
            self._marked = []

    def _flush_participants(self) -> None:
        """A few participants per statement: their JSON is built for those only, which bounds the memory a
        flush takes whatever the batch's size. Results: only the rows that are new or changed."""
        saved = [(key, state) for key in sorted(self._dirty) if (state := self._participants[key]) is not None]
        written = self._written
        self._participants, self._written = {}, {}
        self._dirty.clear()
        row = tables.ParticipantState
        upsert = insert(row)
        bump = {"state": upsert.excluded.state, "version": row.version + 1, "updated_at": func.now()}
        statement = upsert.on_conflict_do_update(index_elements=[row.study_id, row.subject_id], set_=bump)
        for start in range(0, len(saved), FLUSH_CHUNK):
            chunk = saved[start : start + FLUSH_CHUNK]
            todo = [(key, changes_of(state, written.get(key))) for key, state in chunk]
            write_results(self._connection, todo)
            rows = [{"study_id": key[0], "subject_id": key[1], "state": state_json(state)} for key, state in chunk]
            if self._cache is None:
                self._connection.execute(statement, rows)
                continue
            returning = statement.returning(row.study_id, row.subject_id, ROW_XMIN)
            xmins = {(study, subject): xmin for study, subject, xmin in self._connection.execute(returning, rows)}
            del rows
            for (key, state), (_, change) in zip(chunk, todo, strict=True):
                self._cache.put(key, xmins[key], state, change.written)

    def _flush_studies(self) -> None:
        for study_id in sorted(self._dirty_studies):
            loaded, state = self._studies[study_id]
            assert state is not None  # only saved states are dirty
            data = state.to_json()
            if data == loaded:
                continue
            row = tables.StudyState
            upsert = insert(row).values(study_id=study_id, state=data)
            changed = {"state": upsert.excluded.state, "updated_at": func.now()}
            self._connection.execute(upsert.on_conflict_do_update(index_elements=[row.study_id], set_=changed))
            self._studies[study_id] = (data, state)
        self._dirty_studies.clear()
