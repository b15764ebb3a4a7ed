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

from sqlalchemy import Connection, func, select, text
from sqlalchemy.dialects.postgresql import insert

from services.safety_rules.adapters import tables
from services.safety_rules.adapters.participant_cache import ParticipantCache
from services.safety_rules.adapters.participant_rows import (
    Facts,
    Written,
    changes_of,
    facts_of,
    facts_text,
    read_participants,
    same_facts,
    state_text,
    write_results,
)
from services.safety_rules.domain import ParticipantState, StudyState

StudyJson = dict[str, Any]
Key = tuple[str, str]
#: Participants written per statement by `flush()`.
FLUSH_CHUNK = 64
# The statements of every batch take their rows as arrays: one statement text whatever the number of rows,
# prepared once per connection (an IN or VALUES list is a new statement to parse and plan at each size).
#: The id of the transaction that wrote each row (PostgreSQL system column ``xmin``), as text.
ROW_XMINS = text(
    "SELECT subject_id, xmin::text FROM safety_rules.participant_state"
    " WHERE study_id = :study AND subject_id = ANY(CAST(:subjects AS text[]))"
)
KNOWN_SOURCES = text("SELECT dedup_key FROM safety_rules.processed_source WHERE dedup_key = ANY(CAST(:keys AS text[]))")
MARK_SOURCES = text(
    "INSERT INTO safety_rules.processed_source (dedup_key) SELECT unnest(CAST(:keys AS text[])) ON CONFLICT DO NOTHING"
)
#: A NULL ``facts`` keeps the column's stored value (not even compressed again): given only for a row this
#: store knows holds the very facts (`Written.facts`), never for a new row.
UPSERT_STATES = text(
    "INSERT INTO safety_rules.participant_state AS p (study_id, subject_id, state, facts)"
    " SELECT d.study_id, d.subject_id, CAST(d.state AS json), CAST(d.facts AS json)"
    " FROM unnest(CAST(:studies AS text[]), CAST(:subjects AS text[]), CAST(:states AS text[]),"
    " CAST(:facts AS text[])) AS d(study_id, subject_id, state, facts)"
    " ON CONFLICT (study_id, subject_id)"
    " DO UPDATE SET state = excluded.state, facts = coalesce(excluded.facts, p.facts),"
    " version = p.version + 1, updated_at = now()"
    " RETURNING study_id, subject_id, xmin::text"
)


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
            known = set(self._connection.execute(KNOWN_SOURCES, {"keys": keys}).scalars())
            self._processed.update({key: key in known for key in keys})

    def _take_cached(self, study_id: str, subjects: list[str], cache: ParticipantCache) -> list[str]:
        """Takes the cached states whose rows are unchanged; returns the subjects still to read."""
        found = self._connection.execute(ROW_XMINS, {"study": study_id, "subjects": subjects})
        written: dict[str, str] = {subject: xmin for subject, xmin in found}
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
            self._connection.execute(MARK_SOURCES, {"keys": self._marked})
            self._marked = []

    def _flush_participants(self) -> None:
        """A few participants per statement: their JSON is built for those only, which bounds the memory a
        flush takes whatever the batch's size. Results: only the rows that are new or changed."""
        saved = [(key, state) for key in sorted(self._dirty) if (state := self._participants[key]) is not None]
        written = self._written
        self._participants, self._written = {}, {}
        self._dirty.clear()
        for start in range(0, len(saved), FLUSH_CHUNK):
            chunk = saved[start : start + FLUSH_CHUNK]
            facts = [_facts_column(state, written.get(key)) for key, state in chunk]
            todo = [(key, changes_of(state, written.get(key))) for key, state in chunk]
            for (_, change), (held, _) in zip(todo, facts, strict=True):
                change.written.facts = held
            write_results(self._connection, todo)
            columns = {
                "studies": [key[0] for key, _ in chunk],
                "subjects": [key[1] for key, _ in chunk],
                "states": [state_text(state) for _, state in chunk],
                "facts": [column for _, column in facts],
            }
            found = self._connection.execute(UPSERT_STATES, columns)
            del columns
            xmins = {(study, subject): xmin for study, subject, xmin in found}
            if self._cache is None:
                continue
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


def _facts_column(state: ParticipantState, written: Written | None) -> tuple[Facts, str | None]:
    """The state's facts, and the ``facts`` column's new text (None: the row holds these very facts)."""
    facts = facts_of(state)
    return facts, None if written is not None and same_facts(facts, written.facts) else facts_text(facts)
