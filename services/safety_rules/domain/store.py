"""The engine's state port, and the in-memory adapter used by `trialwatch replay` and the tests.

A live adapter loads `ParticipantState.from_json` / `StudyState.from_json` from PostgreSQL JSONB,
and writes `to_json()` plus the processed key in the transaction that publishes the signals.
"""

from __future__ import annotations

from typing import Protocol

from services.safety_rules.domain.state import ParticipantState
from services.safety_rules.domain.study_state import StudyState


class StateStore(Protocol):
    """Per-participant and per-study state, and the source records already processed."""

    def load_participant(self, study_id: str, subject_id: str) -> ParticipantState | None:
        """The participant's state, or None before their first record."""
        ...

    def save_participant(self, study_id: str, state: ParticipantState) -> None:
        """Keep the participant's state after a record."""
        ...

    def load_study(self, study_id: str) -> StudyState | None:
        """The study's state, or None before the first record."""
        ...

    def save_study(self, state: StudyState) -> None:
        """Keep the study's state after a record."""
        ...

    def is_processed(self, dedup_key: str) -> bool:
        """Whether a source record with this key was already processed (SAFETY_RULES §1, §6)."""
        ...

    def mark_processed(self, dedup_key: str) -> None:
        """Remember a processed source record."""
        ...


class InMemoryStateStore:
    """State in dictionaries; objects are kept as they are (no copies, no JSON round trips)."""

    def __init__(self) -> None:
        self.participants: dict[tuple[str, str], ParticipantState] = {}
        self.studies: dict[str, StudyState] = {}
        self.processed: set[str] = set()

    def load_participant(self, study_id: str, subject_id: str) -> ParticipantState | None:
        """See `StateStore`."""
        return self.participants.get((study_id, subject_id))

    def save_participant(self, study_id: str, state: ParticipantState) -> None:
        """See `StateStore`."""
        self.participants[(study_id, state.subject_id)] = state

    def load_study(self, study_id: str) -> StudyState | None:
        """See `StateStore`."""
        return self.studies.get(study_id)

    def save_study(self, state: StudyState) -> None:
        """See `StateStore`."""
        self.studies[state.study_id] = state

    def is_processed(self, dedup_key: str) -> bool:
        """See `StateStore`."""
        return dedup_key in self.processed

    def mark_processed(self, dedup_key: str) -> None:
        """See `StateStore`."""
        self.processed.add(dedup_key)
