"""Use cases of safety_rules: evaluate a batch of ingested records, and advance the clocks to the wall clock.

Each runs in one database transaction that takes the study lock first, then claims the batch's record
ids in the processed-record table (one statement), runs the engine on the batch state store (the same
`Engine` and configuration as `trialwatch replay`, one record after the other), writes the changed
states and records and enqueues the signals. The caller acknowledges the Kafka records only after this
returns, i.e. after the commit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from services.safety_rules.adapters.batch_store import BatchStateStore
from services.safety_rules.adapters.deliveries import first_deliveries
from services.safety_rules.adapters.participant_cache import ParticipantCache
from services.safety_rules.adapters.signal_store import persist_signal_batch, persist_signals
from services.safety_rules.adapters.state_store import StudyJson, lock_study
from services.safety_rules.domain import Engine, StudyConfig
from shared.events import ClinicalEvent, RecordIngested, Signal
from shared.messaging.dead_letter import PoisonMessageError

CLOCK_CAUSE = "wall-clock"


@dataclass(frozen=True)
class Evaluated:
    """What one record did: the signals it recorded, or nothing because it was processed before."""

    signals: list[Signal]
    duplicate: bool


class RulesMetrics(Protocol):
    """What the use cases report once their transaction committed."""

    def records_evaluated(self, records: Sequence[RecordIngested], outcomes: Sequence[Evaluated]) -> None: ...

    def clock_signals(self, signals: Sequence[Signal]) -> None: ...


class RulesService:
    """The study's rules over PostgreSQL: one configured study (records of any other are poison)."""

    def __init__(
        self,
        config: StudyConfig,
        sessions: async_sessionmaker[AsyncSession],
        *,
        consumer_group: str,
        signals_topic: str,
        metrics: RulesMetrics,
        on_commit: Callable[[], None],
        max_participants: int = 125,
        cached_participants: int = 500,
    ) -> None:
        self._config = config
        self._max_participants = max_participants
        self._cache = ParticipantCache(cached_participants) if cached_participants else None
        self._sessions = sessions
        self._group = consumer_group
        self._topic = signals_topic
        self._metrics = metrics
        self._on_commit = on_commit

    def check(self, record: RecordIngested) -> None:
        """Raises PoisonMessageError for a record of a study this service does not monitor."""
        if record.study_id != self._config.study_id:
            raise PoisonMessageError(f"study {record.study_id!r} is not configured (this is {self._config.study_id})")

    async def evaluate(self, record: RecordIngested) -> Evaluated:
        """`evaluate_batch` of one record."""
        [outcome] = await self.evaluate_batch([record])
        return outcome

    async def evaluate_batch(self, records: Sequence[RecordIngested]) -> list[Evaluated]:
        """Processes each record once, in order, all in one transaction (a redelivered or repeated record
        records nothing); one outcome per record. Raises PoisonMessageError, before any database work,
        when a record is of a study this service does not monitor; any error rolls back the whole batch."""
        for record in records:
            self.check(record)
        try:
            async with self._sessions.begin() as session:
                locked = (self._config.study_id, await lock_study(session, self._config.study_id))
                fresh = await first_deliveries(session, self._group, [record.record_id for record in records])
                todo = _first_of_each(records, fresh)
                signals = await session.run_sync(self._run_engine, locked, [records[index].events for index in todo])
                causes = [(records[index].record_id, found) for index, found in zip(todo, signals, strict=True)]
                recorded = await persist_signal_batch(session, causes, topic=self._topic)
        except BaseException:  # the cached states may hold changes that were rolled back
            if self._cache is not None:
                self._cache.clear()
            raise
        outcomes = [Evaluated([], duplicate=True) for _ in records]
        for index, kept in zip(todo, recorded, strict=True):
            outcomes[index] = Evaluated(kept, duplicate=False)
        if any(outcome.signals for outcome in outcomes):
            self._on_commit()
        self._metrics.records_evaluated(records, outcomes)
        return outcomes

    async def advance_clock(self, now: datetime) -> list[Signal]:
        """CLOCK-BREACH signals of the clocks the wall clock ``now`` has passed (SAFETY_RULES §5, live)."""
        async with self._sessions.begin() as session:
            locked = (self._config.study_id, await lock_study(session, self._config.study_id))
            breaches = await session.run_sync(self._advance, locked, now)
            recorded = await persist_signals(session, breaches, topic=self._topic, causation_id=CLOCK_CAUSE)
        if recorded:
            self._on_commit()
        self._metrics.clock_signals(recorded)
        return recorded

    def _advance(self, session: Session, locked: tuple[str, StudyJson], now: datetime) -> list[Signal]:
        store = BatchStateStore(session.connection(), locked)
        breaches = Engine(self._config, store).advance_clock(now)
        store.flush()
        return breaches

    def _run_engine(
        self, session: Session, locked: tuple[str, StudyJson], records: Sequence[Sequence[ClinicalEvent]]
    ) -> list[list[Signal]]:
        """Exactly `trialwatch replay`'s step for each record in turn: clocks to its ingestion time, then
        the record. The participants of a run of records are read up front and written once after it; a
        run holds at most ``max_participants`` of them, which bounds the memory a batch takes."""
        store = BatchStateStore(session.connection(), locked, self._cache)
        engine = Engine(self._config, store)
        signals: list[list[Signal]] = []
        for run, subjects in _runs(records, self._max_participants):
            store.prefetch(self._config.study_id, subjects, [events[0].dedup_key for events in run if events])
            signals += [_replay_step(engine, events) for events in run]
            store.flush()
        return signals


def _runs(
    records: Sequence[Sequence[ClinicalEvent]], max_participants: int
) -> list[tuple[Sequence[Sequence[ClinicalEvent]], set[str]]]:
    """Consecutive records, cut where the next one would bring a run over ``max_participants``."""
    runs: list[tuple[Sequence[Sequence[ClinicalEvent]], set[str]]] = []
    start, subjects = 0, set[str]()
    for index, events in enumerate(records):
        mine = {event.subject_id for event in events if event.subject_id is not None}
        if subjects and len(subjects | mine) > max_participants:
            runs.append((records[start:index], subjects))
            start, subjects = index, set()
        subjects |= mine
    if start < len(records):
        runs.append((records[start:], subjects))
    return runs


def _first_of_each(records: Sequence[RecordIngested], fresh: set[str]) -> list[int]:
    """Positions of the records to process: the first of each id this group never processed."""
    left, todo = set(fresh), []
    for index, record in enumerate(records):
        if record.record_id in left:
            left.discard(record.record_id)
            todo.append(index)
    return todo


def _replay_step(engine: Engine, events: Sequence[ClinicalEvent]) -> list[Signal]:
    if not events:
        return []
    return engine.advance_clock(max(event.recorded_at for event in events)) + engine.process(events)
