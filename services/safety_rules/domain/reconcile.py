"""Raise, keep or retract: comparing the candidate of a slot with the signal standing there.

SAFETY_RULES §2 and §6: a correction after which the same rule still fires keeps the standing
signal (nothing new); a rule that no longer holds is retracted and the new one, if any, raised; a
deleted result retracts every signal that used it, composite rules included (raised anew when the
rule still holds without it).
"""

from __future__ import annotations

from dataclasses import dataclass

from services.safety_rules.domain import halting, signals
from services.safety_rules.domain.model import Batch, Candidate, RuleContext, Touch
from services.safety_rules.domain.state import ActiveSignal, Slot
from shared.events import Signal


@dataclass(frozen=True, slots=True)
class SlotChange:
    """What changed in one slot: the signal withdrawn, the one raised, and halting qualification."""

    slot: Slot
    removed: ActiveSignal | None
    added: ActiveSignal | None
    qualified_before: tuple[str, ...]
    qualified_after: tuple[str, ...]
    touch: Touch
    candidate: Candidate | None


def _reason(standing: ActiveSignal, candidate: Candidate | None, batch: Batch) -> str:
    if not batch.invalidated.isdisjoint(standing.used):
        return "a result it used was deleted"
    if candidate is None:
        return "no longer holds"
    return f"superseded by {candidate.rule_id}"


def _keeps(standing: ActiveSignal | None, candidate: Candidate | None, batch: Batch) -> bool:
    """The same rule still holds and nothing it used was deleted: the standing signal stays."""
    return (
        standing is not None
        and candidate is not None
        and standing.rule_id == candidate.rule_id
        and batch.invalidated.isdisjoint(standing.used)
    )


def _activate(
    ctx: RuleContext, slot: Slot, candidate: Candidate, dedup_key: str, qualifies: tuple[str, ...]
) -> ActiveSignal:
    signal_id = signals.raised_id(candidate, dedup_key)
    flags = tuple(sorted(candidate.flags))
    added = ActiveSignal(
        signal_id, candidate.rule_id, candidate.evidence, candidate.used, candidate.event_at, flags, qualifies
    )
    ctx.participant.activate(slot, added)
    return added


def reconcile(
    ctx: RuleContext, slot: Slot, candidate: Candidate | None, batch: Batch, touch: Touch
) -> tuple[list[Signal], SlotChange | None]:
    """Apply the candidate of one slot; return the signals to emit and the change, if any."""
    participant, config = ctx.participant, ctx.config
    standing = participant.active.get(slot)
    qualifies = (
        ()
        if candidate is None
        else halting.qualifying(config, participant, candidate.rule_id, candidate.flags, candidate.event_at)
    )
    if _keeps(standing, candidate, batch):
        assert standing is not None and candidate is not None
        before, standing.qualifies, standing.flags = standing.qualifies, qualifies, tuple(sorted(candidate.flags))
        return [], None if before == qualifies else SlotChange(slot, None, None, before, qualifies, touch, candidate)
    emitted: list[Signal] = []
    subject = participant.subject_id
    if standing is not None:
        participant.deactivate(slot)
        reason = _reason(standing, candidate, batch)
        retracted = signals.retraction(config, subject, standing, dedup_key=batch.dedup_key, touch=touch, reason=reason)
        emitted.append(retracted)
    added = None if candidate is None else _activate(ctx, slot, candidate, batch.dedup_key, qualifies)
    if added is not None and candidate is not None:
        emitted.append(signals.raised(config, subject, candidate, added.signal_id, touch.observed_at))
    if standing is None and added is None:
        return emitted, None
    before = () if standing is None else standing.qualifies
    return emitted, SlotChange(slot, standing, added, before, qualifies, touch, candidate)


def requalify(ctx: RuleContext, touch: Touch) -> list[SlotChange]:
    """After the participant's first dose changed: standing signals whose halting phase changed."""
    changes: list[SlotChange] = []
    for slot, standing in ctx.participant.active.items():
        flags = frozenset(standing.flags)
        qualifies = halting.qualifying(ctx.config, ctx.participant, standing.rule_id, flags, standing.event_at)
        if qualifies != standing.qualifies:
            changes.append(SlotChange(slot, None, None, standing.qualifies, qualifies, touch, None))
            standing.qualifies = qualifies
    return changes
