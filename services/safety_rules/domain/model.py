"""Values passed between the engine and the rule functions.

A rule function looks at one *slot* (a rule family anchored on a result, an AE, a diary report or
the participant) and returns the `Candidate` signal that should stand there now, or None. The
engine compares it with the signal already standing and raises, keeps or retracts (SAFETY_RULES
§2 result status, §6 identity and status).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

from services.safety_rules.domain.config_model import StudyConfig
from services.safety_rules.domain.state import ParticipantState, Slot


@dataclass(frozen=True, slots=True)
class Candidate:
    """The signal a slot should carry now.

    `used` lists the result keys / record anchors it depends on: deleting one of them retracts it.
    `event_at` is when the qualifying event happened (halting phases); `day0`/`due_at` only for clocks.
    """

    rule_id: str
    evidence: tuple[str, ...]
    used: tuple[str, ...]
    event_at: datetime
    detail: dict[str, Any]
    flags: frozenset[str] = frozenset()
    day0: datetime | None = None
    due_at: datetime | None = None


class RuleContext(NamedTuple):
    """What a rule function may read: the study configuration and the participant's state.

    A named tuple: one is made per record, and a frozen dataclass costs several times more to build."""

    config: StudyConfig
    participant: ParticipantState


SlotRule = Callable[[RuleContext, str], Candidate | None]


class Touch(NamedTuple):
    """Why a slot is re-evaluated: the event time and source key of the record that touched it."""

    observed_at: datetime
    source: str


_new_tuple = tuple.__new__


def touch_of(observed_at: datetime, source: str) -> Touch:
    """`Touch(observed_at, source)` without the named tuple's generated `__new__` (one or two per record)."""
    return _new_tuple(Touch, (observed_at, source))


def rule_context(config: StudyConfig, participant: ParticipantState) -> RuleContext:
    """`RuleContext(config, participant)`, built as `touch_of` builds a Touch (one per record)."""
    return _new_tuple(RuleContext, (config, participant))


class Batch:
    """Effects of one source record on one participant, gathered before any rule is evaluated.

    A plain class with slots: one is made per record (a dataclass with default factories costs more)."""

    __slots__ = ("dedup_key", "dosing", "invalidated", "specimens", "touched")

    def __init__(self, dedup_key: str) -> None:
        self.dedup_key = dedup_key
        self.touched: dict[Slot, Touch] = {}
        self.invalidated: set[str] = set()
        self.dosing: Touch | None = None
        self.specimens: dict[str, Touch] = {}

    def touch(self, slot: Slot, touch: Touch) -> None:
        """Mark a slot for evaluation (the first touching event names the trigger)."""
        self.touched.setdefault(slot, touch)


def slot_key(family: str, anchor: str) -> Slot:
    """Identity of a slot: rule family and anchor."""
    return (family, anchor)


def number(value: Decimal) -> int | float:
    """A Decimal as a JSON number (INTERFACES §3: numbers in `detail` are JSON numbers)."""
    return int(value) if value == value.to_integral_value() else float(value)
