"""The SQL-free edges of the use cases: refusing a study the service does not monitor, and the
trialwatch.signals.v1 message of a signal (its database side runs in tests/integration/test_rules_live.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.safety_rules.adapters.signal_store import signal_message
from services.safety_rules.domain import packaged_study
from services.safety_rules.handlers import Evaluated, RulesService, _runs
from shared.events import ClinicalEvent, RecordIngested, Signal
from shared.messaging.dead_letter import PoisonMessageError, is_poison


class NoDatabase:
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the database must not be touched")

    begin = __call__


class NoMetrics:
    def records_evaluated(self, records: Sequence[RecordIngested], outcomes: Sequence[Evaluated]) -> None:
        raise AssertionError("nothing was evaluated")

    def clock_signals(self, signals: Sequence[Signal]) -> None:
        raise AssertionError("no clock ran")


async def test_a_record_of_another_study_is_poison_before_any_database_work() -> None:
    service = RulesService(
        packaged_study(),
        cast(async_sessionmaker[AsyncSession], NoDatabase()),
        consumer_group="g",
        signals_topic="trialwatch.signals.v1",
        metrics=NoMetrics(),
        on_commit=lambda: None,
    )
    record = RecordIngested(
        record_id="r",
        dedup_key="k",
        study_id="OTHER-STUDY",
        received_at=datetime(2026, 3, 1, tzinfo=UTC),
        channel="kafka",
        events=[],
    )
    with pytest.raises(PoisonMessageError, match="'OTHER-STUDY' is not configured") as raised:
        await service.evaluate(record)
    assert is_poison(raised.value)


def test_the_published_signal_is_the_interfaces_object_keyed_by_study_with_its_cause() -> None:
    signal = Signal.model_validate(
        {
            "signal_id": "s-1",
            "study_id": "ANAKINRA-AD",
            "subject_id": None,
            "rule_id": "H-SI",
            "severity": "HALT",
            "action": "PAUSE_STUDY",
            "status": "RAISED",
            "observed_at": datetime(2026, 3, 1, tzinfo=UTC),
            "evidence": ["REC:ANAKINRA-AD:AE:1"],
            "detail": {"count": 2, "n": 8, "boundary": 2, "posterior": 0.922},
        }
    )
    message = signal_message(signal, "trialwatch.signals.v1", causation_id="record-9")
    assert (message.event_id, message.topic, message.key) == ("s-1", "trialwatch.signals.v1", "ANAKINRA-AD")
    assert message.payload == signal.to_public()
    assert list(message.payload) == list(signal.to_public())
    assert message.headers == {"kind": "signal", "schema_version": "1", "causation_id": "record-9"}


def test_a_batch_is_cut_into_runs_of_consecutive_records_holding_at_most_so_many_participants() -> None:
    def record(*subjects: str | None) -> list[ClinicalEvent]:
        return [cast(ClinicalEvent, SimpleNamespace(subject_id=subject)) for subject in subjects]

    records = [record("A"), record("B", "A"), record(None), record("C"), record("A"), record("D", "E"), record("F")]
    runs = _runs(records, max_participants=2)
    assert [(len(run), sorted(subjects)) for run, subjects in runs] == [
        (3, ["A", "B"]),
        (2, ["A", "C"]),
        (1, ["D", "E"]),
        (1, ["F"]),
    ]
    assert [events for run, _ in runs for events in run] == records
    assert _runs(records[:1], max_participants=1) == [(records[:1], {"A"})]
    assert _runs([], max_participants=1) == []
