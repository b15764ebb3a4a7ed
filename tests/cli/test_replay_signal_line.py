"""`trialwatch replay` writes each signal with `signal_line`, a fast path that must give exactly the bytes of
`orjson.dumps(signal.to_public())` (INTERFACES §3: optional keys only when they apply)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import orjson

from services.ingest.domain import Parsed, ParserConfig, parse_stream
from services.safety_rules.domain import Engine, InMemoryStateStore, packaged_study
from shared.events import ClinicalEvent, Signal
from trialwatch.replay import signal_line

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"


def corpus_signals() -> list[Signal]:
    study = packaged_study()
    config = ParserConfig(study_ids=frozenset({study.study_id}), default_study_id=study.study_id)
    engine = Engine(study, InMemoryStateStore())
    signals: list[Signal] = []
    for path in sorted(CORPUS.iterdir()):
        with path.open("rb") as stream:
            for result in parse_stream(stream, config, name=path.name):
                if isinstance(result, Parsed) and result.events and not result.non_production:
                    events: Sequence[ClinicalEvent] = result.events  # type: ignore[assignment]
                    signals += engine.advance_clock(max(event.recorded_at for event in events))
                    signals += engine.process(events)
    return signals


def test_signal_line_is_the_public_object_byte_for_byte() -> None:
    signals = corpus_signals()
    for signal in signals:
        assert signal_line(signal) == orjson.dumps(signal.to_public()) + b"\n", signal.rule_id
    # the corpus exercises every shape: retractions, clocks with due_at, halting statistics, composites
    kinds = {(signal.rule_id, signal.status) for signal in signals}
    assert {("LAB-ANC-4", "RETRACTED"), ("SPONSOR-24H", "RAISED"), ("H-SI", "RAISED"), ("LAB-FN", "RAISED")} <= kinds
    assert any(signal.due_at is not None for signal in signals)


def test_every_corpus_signal_is_a_valid_signal() -> None:
    # the engine builds signals without pydantic's validation (safety_rules.domain.signals.build_signal)
    signals = corpus_signals()
    assert any(signal.subject_id is None for signal in signals)  # halting
    for signal in signals:
        validated = Signal.model_validate_json(signal.model_dump_json())
        assert list(validated.__dict__.items()) == list(signal.__dict__.items()), signal.rule_id
