"""The notifier's polls through `BatchConsumer` with its own record handlers (consumers.py): which records
are skipped unparsed, what is applied together, what is dead-lettered with its reason, which offsets are
committed and which partitions are sought back. Fakes stand for the use cases, the DLT and Kafka; the same
against the real broker and database: tests/integration/test_notifier_batches.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from sqlalchemy.exc import OperationalError

from notifier.signal_factory import STUDY, anc3, dsmb_resume, lab_record
from services.notifier.consumers import DecisionRecords, SignalRecords, may_hold_decision
from services.notifier.context import UnroutedStudyError
from shared.events import RecordIngested, Signal
from shared.messaging.batches import BatchConsumer
from shared.messaging.dead_letter import DeadLetters
from shared.messaging.outbox import Delivery
from shared.messaging.retry import Backoff, RetryPolicy

EVENTS, SIGNALS = "trialwatch.events.v1", "trialwatch.signals.v1"
POLICY = RetryPolicy(max_attempts=3, backoff=Backoff(first=0.1, cap=2.0))
DB_DOWN = OperationalError("INSERT", {}, ConnectionRefusedError("database away"))
AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def raw(topic: str, offset: int, value: bytes, partition: int = 0) -> Any:
    return ConsumerRecord(topic, partition, offset, 0, 0, STUDY.encode(), value, None, 11, len(value), [])


def raws(topic: str, values: Sequence[bytes]) -> list[Any]:
    return [raw(topic, offset, value) for offset, value in enumerate(values)]


class Rig:
    """The use cases (fail as told), the dead-letter producer, the consumer's offsets and the clock."""

    def __init__(self, failures: Sequence[Exception] = (), dead_letters_fail: bool = False) -> None:
        self.failures = list(failures)
        self.dead_letters_fail = dead_letters_fail
        self.applied: list[list[str]] = []
        self.dead: list[tuple[int, Mapping[str, str]]] = []
        self.commits: list[dict[TopicPartition, int]] = []
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.sleeps: list[float] = []

    def check(self, signal: Signal) -> None:
        if signal.study_id != STUDY:
            raise UnroutedStudyError(f"no routing configuration for study {signal.study_id!r}")

    def wanted(self, record: RecordIngested) -> bool:
        return record.study_id == STUDY and any(event.kind == "dsmb.decision" for event in record.events)

    async def record_batch(self, messages: Sequence[Any]) -> list[Any]:
        self.applied.append([getattr(m, "signal_id", None) or m.record_id for m in messages])
        if self.failures:
            raise self.failures.pop(0)
        return [None for _ in messages]

    async def publish(self, topic: str, key: bytes, value: bytes, headers: Mapping[str, str]) -> Delivery:
        if self.dead_letters_fail:
            raise OSError("broker away")
        self.dead.append((int(headers["x-original-offset"]), dict(headers)))
        return Delivery(topic, 0, len(self.dead) - 1)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(offsets)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition, offset))

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def decisions(self) -> BatchConsumer[RecordIngested]:
        dead = DeadLetters(self.publish, "notifier-decisions")
        return BatchConsumer(DecisionRecords(self), dead, POLICY, sleep=self.sleep)

    def signals(self) -> BatchConsumer[Signal]:
        return BatchConsumer(SignalRecords(self), DeadLetters(self.publish, "notifier"), POLICY, sleep=self.sleep)


def test_a_decision_record_may_hold_a_decision_also_when_its_kind_is_written_with_an_escape() -> None:
    resume = dsmb_resume("H-NEUT", AT).model_dump_json().encode()
    escaped = resume.replace(b'"kind":"dsmb.decision"', b'"kind":"\\u0064smb.decision"')
    assert escaped != resume
    assert RecordIngested.model_validate_json(escaped).events[0].kind == "dsmb.decision"  # the same record
    assert may_hold_decision(resume) and may_hold_decision(escaped)
    assert not may_hold_decision(lab_record(1).model_dump_json().encode())
    quoted = lab_record(1).model_dump_json().encode().replace(b'"AD-003"', b'"AD-\\"003"')
    assert RecordIngested.model_validate_json(quoted).events[0].subject_id == 'AD-"003'
    assert may_hold_decision(quoted)  # any escape at all sends a record to the parser (a byte search decides)


async def test_records_without_a_decision_are_skipped_unparsed_and_committed_with_no_transaction() -> None:
    rig = Rig()
    values = [lab_record(i).model_dump_json().encode() for i in range(3)] + [b"{not json at all"]
    await rig.decisions().consume(raws(EVENTS, values), rig)
    assert rig.applied == [] and rig.dead == [] and rig.sleeps == []
    assert rig.commits == [{TopicPartition(EVENTS, 0): 4}]


async def test_a_resume_among_many_records_is_applied_in_one_transaction_and_all_are_committed_once() -> None:
    rig = Rig()
    resume = dsmb_resume("H-NEUT", AT)
    records = [lab_record(i) for i in range(500)]
    records.insert(250, resume)
    await rig.decisions().consume(raws(EVENTS, [r.model_dump_json().encode() for r in records]), rig)
    assert rig.applied == [[resume.record_id]]
    assert rig.commits == [{TopicPartition(EVENTS, 0): 501}]


async def test_an_undecodable_decision_is_dead_lettered_with_its_reason_and_the_others_are_applied() -> None:
    rig = Rig()
    first, second = dsmb_resume("H-NEUT", AT), dsmb_resume(None, AT)
    poison = b'{"kind":"record.ingested","events":[{"kind":"dsmb.decision"}]}'
    values = [first.model_dump_json().encode(), poison, second.model_dump_json().encode()]
    await rig.decisions().consume(raws(EVENTS, values), rig)
    assert rig.applied == [[first.record_id, second.record_id]]
    assert [offset for offset, _ in rig.dead] == [1]
    headers = rig.dead[0][1]
    assert headers["x-reason"].startswith("ValidationError") and headers["x-attempts"] == "1"
    assert headers["x-consumer-group"] == "notifier-decisions" and headers["x-original-topic"] == EVENTS
    assert rig.commits == [{TopicPartition(EVENTS, 0): 3}]


async def test_a_signal_of_an_unrouted_study_is_dead_lettered_and_the_poll_s_others_open_together() -> None:
    rig = Rig()
    good, other = anc3("AD-001"), anc3("AD-002").model_copy(update={"study_id": "OTHER-STUDY"})
    later = anc3("AD-003")
    values = [s.model_dump_json().encode() for s in (good, other, later)]
    await rig.signals().consume(raws(SIGNALS, values), rig)
    assert rig.applied == [[good.signal_id, later.signal_id]]
    assert [(offset, h["x-exception"]) for offset, h in rig.dead] == [(1, "UnroutedStudyError")]
    assert "OTHER-STUDY" in rig.dead[0][1]["x-reason"]
    assert rig.commits == [{TopicPartition(SIGNALS, 0): 3}]


async def test_a_signal_failing_the_transaction_is_isolated_retried_then_dead_lettered_and_the_rest_applied() -> None:
    signals = [anc3(f"AD-00{i}") for i in range(4)]
    ids = [s.signal_id for s in signals]
    bad = ValueError("routing blew up on this one")

    class Failing(Rig):
        async def record_batch(self, messages: Sequence[Any]) -> list[Any]:
            self.applied.append([m.signal_id for m in messages])
            if ids[1] in self.applied[-1]:
                raise bad
            return [None for _ in messages]

    rig = Failing()  # the poll fails; alone, the first passes, the second fails max_attempts times
    await rig.signals().consume(raws(SIGNALS, [s.model_dump_json().encode() for s in signals]), rig)
    assert rig.applied == [ids, [ids[0]], [ids[1]], [ids[1]], [ids[1]], [ids[2], ids[3]]]
    assert [(offset, h["x-attempts"]) for offset, h in rig.dead] == [(1, "3")]
    assert rig.sleeps == [0.1, 0.2]
    assert rig.commits == [{TopicPartition(SIGNALS, 0): 4}]


async def test_a_database_outage_is_retried_then_sought_back_never_dead_lettered_nor_committed() -> None:
    rig = Rig(failures=[DB_DOWN] * 3)
    resume = dsmb_resume("H-NEUT", AT)
    values = [lab_record(0).model_dump_json().encode(), resume.model_dump_json().encode()]
    await rig.decisions().consume(raws(EVENTS, values), rig)
    assert rig.dead == []
    assert rig.commits == [{TopicPartition(EVENTS, 0): 1}]  # the skipped record before it
    assert rig.seeks == [(TopicPartition(EVENTS, 0), 1)]
    assert rig.sleeps == [0.1, 0.2, 2.0]


async def test_a_dead_letter_that_cannot_be_published_leaves_the_record_for_redelivery() -> None:
    rig = Rig(dead_letters_fail=True)
    await rig.signals().consume(raws(SIGNALS, [b"not a signal", anc3().model_dump_json().encode()]), rig)
    assert rig.applied == [] and rig.commits == []
    assert rig.seeks == [(TopicPartition(SIGNALS, 0), 0)]
