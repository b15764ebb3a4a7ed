"""Signals are built without pydantic's validation (`signals.build_signal`): each is exactly the Signal that
validating the same values gives (fields, order, JSON). Every signal of the rule tables' harness
(`factories.Harness.send`) and of the hand-written corpus (`tests/cli/test_replay_signal_line.py`) is checked
to be a valid Signal as well."""

from __future__ import annotations

from datetime import UTC, datetime

from services.safety_rules.domain.signals import build_signal
from shared.events import Signal


def test_a_built_signal_is_the_validated_signal() -> None:
    at = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    values = {
        "signal_id": "s-1", "study_id": "ANAKINRA-AD", "subject_id": "AD-001", "rule_id": "IND-15D",
        "severity": "URGENT", "action": "NONE", "status": "RAISED", "observed_at": at, "evidence": ["REC:1"],
        "detail": {"ae_id": "AE-1"}, "due_at": at,
    }  # fmt: skip
    built = build_signal(**values)  # type: ignore[arg-type]
    validated = Signal(**values)
    assert list(built.__dict__.items()) == list(validated.__dict__.items())  # values and field order
    assert built.model_dump_json() == validated.model_dump_json()
    assert built.to_public() == validated.to_public()
