"""Stand-in rules engine for the end-to-end smoke path: one INFO signal ``SMOKE`` per event.

Replaced in ``bootstrap`` by the real engine (``services.safety_rules.domain``) once it exists; it has
the same shape (``Evaluate``), so nothing else changes.
"""

from __future__ import annotations

from shared.events import ClinicalEvent, Signal, deterministic_id

RULE_ID = "SMOKE"


def evaluate(event: ClinicalEvent) -> list[Signal]:
    return [
        Signal(
            signal_id=deterministic_id(RULE_ID, event.event_id),
            study_id=event.study_id,
            subject_id=event.subject_id,
            rule_id=RULE_ID,
            severity="INFO",
            action="NONE",
            status="RAISED",
            observed_at=event.occurred_at,
            evidence=[event.source],
            detail={"event_id": event.event_id, "kind": event.kind},
        )
    ]
