"""Study-level state: dosed participants, halting counts and latches, open regulatory clocks.

Plain dataclass with `to_json` / `from_json` like the participant state. Open clocks are also kept
in a heap ordered by due time so that `Engine.advance_clock` costs nothing when no clock is due.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class OpenClock:
    """A running regulatory clock (SAFETY_RULES §5): its signal, AE and deadline."""

    signal_id: str
    rule_id: str
    subject_id: str
    ae_id: str
    day0: datetime
    due_at: datetime
    evidence: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON object for the persistent state store."""
        return {
            "signal_id": self.signal_id,
            "rule_id": self.rule_id,
            "subject_id": self.subject_id,
            "ae_id": self.ae_id,
            "day0": self.day0.isoformat(),
            "due_at": self.due_at.isoformat(),
            "evidence": list(self.evidence),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OpenClock:
        """Inverse of `to_json`."""
        return cls(
            data["signal_id"],
            data["rule_id"],
            data["subject_id"],
            data["ae_id"],
            datetime.fromisoformat(data["day0"]),
            datetime.fromisoformat(data["due_at"]),
            tuple(data["evidence"]),
        )


def submission_key(subject_id: str, ae_id: str, clock: str) -> str:
    """Identity of one expedited report: participant, AE (REGAEREF) and clock (REGCLOCK)."""
    return f"{subject_id}|{ae_id}|{clock}"


@dataclass(slots=True)
class StudyState:
    """What the engine remembers about the study as a whole."""

    study_id: str
    dosed: set[str] = field(default_factory=set)
    counted: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    latched: set[str] = field(default_factory=set)
    clocks: dict[str, OpenClock] = field(default_factory=dict)
    submissions: set[str] = field(default_factory=set)
    due_heap: list[tuple[datetime, str]] = field(default_factory=list)

    def open_clock(self, clock: OpenClock) -> None:
        """Start a clock unless its report was already submitted."""
        if submission_key(clock.subject_id, clock.ae_id, clock.rule_id) in self.submissions:
            return
        self.clocks[clock.signal_id] = clock
        heapq.heappush(self.due_heap, (clock.due_at, clock.signal_id))

    def stop_clock(self, signal_id: str) -> None:
        """Stop a clock (submitted, retracted or breached); its heap entry is dropped lazily."""
        self.clocks.pop(signal_id, None)

    def submit(self, subject_id: str, ae_id: str, clock: str) -> None:
        """A REG record: stop the named clock of that AE, now or when it starts."""
        key = submission_key(subject_id, ae_id, clock)
        self.submissions.add(key)
        for open_clock in list(self.clocks.values()):
            if submission_key(open_clock.subject_id, open_clock.ae_id, open_clock.rule_id) == key:
                self.stop_clock(open_clock.signal_id)

    def pop_overdue(self, now: datetime) -> list[OpenClock]:
        """Clocks whose due time `now` has passed, removed from the open set."""
        overdue: list[OpenClock] = []
        while self.due_heap and self.due_heap[0][0] < now:
            due_at, signal_id = heapq.heappop(self.due_heap)
            clock = self.clocks.get(signal_id)
            if clock is not None and clock.due_at == due_at:
                overdue.append(self.clocks.pop(signal_id))
        return overdue

    def to_json(self) -> dict[str, Any]:
        """JSON object for the persistent state store (the heap is rebuilt)."""
        return {
            "study_id": self.study_id,
            "dosed": sorted(self.dosed),
            # Pairs, not objects: PostgreSQL JSONB sorts object keys, and the order participants were counted
            # in decides a halting signal's evidence and so its id (live must equal replay).
            "counted": [[rule, [[s, list(e)] for s, e in subjects.items()]] for rule, subjects in self.counted.items()],
            "latched": sorted(self.latched),
            "clocks": [clock.to_json() for clock in self.clocks.values()],
            "submissions": sorted(self.submissions),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StudyState:
        """Inverse of `to_json`."""
        state = cls(
            data["study_id"],
            dosed=set(data["dosed"]),
            counted={rule: {s: tuple(e) for s, e in subs} for rule, subs in data["counted"]},
            latched=set(data["latched"]),
            submissions=set(data["submissions"]),
        )
        for item in data["clocks"]:
            clock = OpenClock.from_json(item)
            state.clocks[clock.signal_id] = clock
            heapq.heappush(state.due_heap, (clock.due_at, clock.signal_id))
        return state
