"""The engine's `StateStore` port over PostgreSQL: JSONB rows read and written inside one transaction.

The engine calls the port synchronously, so the service runs it through `AsyncSession.run_sync`: every
method here is a real query on the transaction's connection. A row is read when the engine asks for
it and written back only when its JSON changed (a participant's results: only those new or changed,
`participant_rows`). `lock_study` is the single-writer guard: the caller
takes it first, before any other row of the study is touched (one lock order, no deadlocks).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, null, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.safety_rules.adapters import tables
from services.safety_rules.adapters.participant_rows import (
    Written,
    changes_of,
    read_participants,
    state_json,
    write_results,
)
from services.safety_rules.domain import ParticipantState, StudyState

StudyJson = dict[str, Any]


async def lock_study(session: AsyncSession, study_id: str) -> StudyJson:
    """SELECT … FOR UPDATE on the study's row (created empty on first use) until the transaction ends.

    Kafka gives one partition, hence one consumer, per study; this lock also holds during a rebalance,
    when the old and the new owner of the partition may briefly both be handling its records. Returns
    the locked row's state.
    """
    row = tables.StudyState
    connection = await session.connection()
    locked = select(row.state).where(row.study_id == study_id).with_for_update()
    state: StudyJson | None = (await connection.execute(locked)).scalar_one_or_none()
    if state is not None:
        return state
    empty = insert(row).values(study_id=study_id, state=StudyState(study_id).to_json())
    await connection.execute(empty.on_conflict_do_nothing(index_elements=[row.study_id]))
    state = (await connection.execute(locked)).scalar_one()
    return state


class SqlStateStore:
    """`services.safety_rules.domain.StateStore` on the connection of the caller's transaction.

    ``locked`` is the study row `lock_study` already read in this transaction (saves reading it again).
    """

    def __init__(self, connection: Connection, locked: tuple[str, StudyJson] | None = None) -> None:
        self._connection = connection
        self._participants: dict[tuple[str, str], tuple[dict[str, Any], Written]] = {}
        self._studies: dict[str, StudyJson] = dict([locked]) if locked else {}

    def load_participant(self, study_id: str, subject_id: str) -> ParticipantState | None:
        """See `StateStore` (the state row and its result rows: `participant_rows`)."""
        found = read_participants(self._connection, study_id, [subject_id])[subject_id]
        if found is None:
            return None
        state, written = found
        self._participants[(study_id, subject_id)] = (state_json(state), written)
        return state

    def save_participant(self, study_id: str, state: ParticipantState) -> None:
        """See `StateStore`; a state equal to the one loaded is not written again."""
        key, data = (study_id, state.subject_id), state_json(state)
        loaded = self._participants.get(key)
        change = changes_of(state, None if loaded is None else loaded[1])
        if loaded is not None and loaded[0] == data and not change.entries and not change.rewrite:
            return
        write_results(self._connection, [(key, change)])
        row = tables.ParticipantState
        # the whole state in ``state``: ``facts`` NULL (see migration 0009)
        upsert = insert(row).values(study_id=study_id, subject_id=state.subject_id, state=data, facts=null())
        changed = {
            "state": upsert.excluded.state,
            "facts": null(),
            "version": row.version + 1,
            "updated_at": func.now(),
        }
        conflict = upsert.on_conflict_do_update(index_elements=[row.study_id, row.subject_id], set_=changed)
        self._connection.execute(conflict)
        self._participants[key] = (data, change.written)

    def load_study(self, study_id: str) -> StudyState | None:
        """See `StateStore`."""
        data = self._studies.get(study_id)
        if data is None:
            row = tables.StudyState
            data = self._connection.execute(select(row.state).where(row.study_id == study_id)).scalar_one_or_none()
        if data is None:
            return None
        self._studies[study_id] = data
        return StudyState.from_json(data)

    def save_study(self, state: StudyState) -> None:
        """See `StateStore`; a state equal to the one loaded is not written again."""
        data = state.to_json()
        if self._studies.get(state.study_id) == data:
            return
        row = tables.StudyState
        upsert = insert(row).values(study_id=state.study_id, state=data)
        changed = {"state": upsert.excluded.state, "updated_at": func.now()}
        self._connection.execute(upsert.on_conflict_do_update(index_elements=[row.study_id], set_=changed))
        self._studies[state.study_id] = data

    def is_processed(self, dedup_key: str) -> bool:
        """See `StateStore`."""
        row = tables.ProcessedSource
        return self._connection.execute(select(row.dedup_key).where(row.dedup_key == dedup_key)).first() is not None

    def mark_processed(self, dedup_key: str) -> None:
        """See `StateStore`."""
        row = tables.ProcessedSource
        self._connection.execute(insert(row).values(dedup_key=dedup_key).on_conflict_do_nothing())
