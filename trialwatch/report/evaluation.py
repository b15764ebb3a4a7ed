"""The rules engine run over a cut, in-process (as `trialwatch replay` runs it): its signals and its
final participant and study states are what the packet's tables report, so every halting number is
the engine's own."""

from __future__ import annotations

from dataclasses import dataclass

from services.safety_rules.domain import Engine, InMemoryStateStore, ParticipantState, StudyConfig, StudyState
from shared.events import Signal
from trialwatch.report.snapshot import Snapshot


@dataclass(frozen=True)
class Evaluation:
    signals: tuple[Signal, ...]
    participants: dict[str, ParticipantState]
    study: StudyState


def evaluate(config: StudyConfig, snapshot: Snapshot) -> Evaluation:
    store = InMemoryStateStore()
    engine = Engine(config, store)
    signals: list[Signal] = []
    for record in snapshot.records:
        signals += engine.advance_clock(max(event.recorded_at for event in record))
        signals += engine.process(record)
    signals += engine.advance_clock(snapshot.cut)  # the cut is the packet's "now" for the clocks
    participants = {subject: state for (_, subject), state in sorted(store.participants.items())}
    study = store.studies.get(config.study_id) or StudyState(config.study_id)
    return Evaluation(tuple(signals), participants, study)
