"""Study pauses and inhibition (Alertmanager's inhibit rules, SAFETY_RULES §4).

A signal matching an inhibit rule's ``source`` (HALT with PAUSE_STUDY) opens a pause of its study; a DSMB
RESUME record of that rule (or of all rules) lifts it. Pauses are computed from the recorded events, not
from their arrival order: a RESUME ingested at or after the halting event's time lifts the pause even when
the notifier reads the RESUME (from trialwatch.events.v1) before the HALT (from trialwatch.signals.v1).
While a pause lasts, signals matching the rule's ``target`` fold into the pause's alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.notifier.domain.model import SignalFacts
from services.notifier.domain.routing_config import RoutingConfig

PauseKind = Literal["pause", "resume"]


@dataclass(frozen=True)
class PauseEvent:
    """A recorded pause (from a HALT signal) or resume (from a DSMB RESUME decision)."""

    kind: PauseKind
    study_id: str
    rule_id: str | None
    at: datetime
    source_id: str
    alert_id: str | None = None
    facts: SignalFacts | None = None


def opens_pause(config: RoutingConfig, facts: SignalFacts) -> bool:
    return facts.status == "RAISED" and any(rule.source.matches(facts) for rule in config.inhibit)


def _lifts(resume: PauseEvent, pause: PauseEvent) -> bool:
    same_rule = resume.rule_id is None or resume.rule_id == pause.rule_id
    return resume.study_id == pause.study_id and same_rule and resume.at >= pause.at


def active_pauses(events: Iterable[PauseEvent]) -> list[PauseEvent]:
    """Pauses no RESUME has lifted, oldest first."""
    recorded = list(events)
    resumes = [event for event in recorded if event.kind == "resume"]
    pauses = [event for event in recorded if event.kind == "pause"]
    return sorted((p for p in pauses if not any(_lifts(r, p) for r in resumes)), key=lambda p: (p.at, p.source_id))


def inhibitor(config: RoutingConfig, facts: SignalFacts, pauses: Sequence[PauseEvent]) -> PauseEvent | None:
    """The active pause that ``facts`` folds into, if any (the oldest one)."""
    for rule in config.inhibit:
        if not rule.target.matches(facts):
            continue
        for pause in pauses:
            if pause.study_id == facts.study_id and pause.facts is not None and rule.source.matches(pause.facts):
                return pause
    return None
