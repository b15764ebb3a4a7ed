"""Study-level halting rules H-DEATH, H-ANA, H-SI, H-NEUT, H-RSAE (SAFETY_RULES §4, §6).

Distinct participants are counted, each once, while one of their standing participant-level
signals qualifies (its rule, the required AE facts, and, unless `phase: any`, an event on or after
their first-dose date). A rule fires when a participant not yet counted brings the count to its
boundary, then stays latched until a DSMB RESUME for it (or for all). HALT signals are never
retracted; a participant whose qualifying signals are all retracted stops counting.

Boundary: a configured participant count, or, for a Bayesian rule (H-SI), b_n computed from the
beta-binomial posterior at the current n (DOMAIN §7.2) - for ANAKINRA-AD b_n = 2 at every n <= 8,
the same as "the 2nd participant".
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.safety_rules.domain.beta_binomial import boundary, posterior_exceeds
from services.safety_rules.domain.config_model import HaltingRule, StudyConfig
from services.safety_rules.domain.signals import build_signal
from services.safety_rules.domain.state import ParticipantState, Slot, utc_date
from services.safety_rules.domain.study_state import StudyState
from shared.events import Signal, deterministic_id


def qualifying(
    config: StudyConfig, participant: ParticipantState, rule_id: str, flags: frozenset[str], event_at: datetime
) -> tuple[str, ...]:
    """The halting rules a participant-level signal counts toward."""
    first = participant.first_dose
    on_treatment = first is not None and utc_date(event_at) >= first
    return tuple(
        rule.rule_id
        for rule in config.halting
        if rule_id in rule.qualifying_rules and rule.require <= flags and (rule.any_phase or on_treatment)
    )


def update_support(
    participant: ParticipantState, slot: Slot, before: tuple[str, ...], after: tuple[str, ...]
) -> tuple[list[str], list[str]]:
    """Move one slot's support between halting rules; return (rules the participant newly counts
    toward, rules they no longer count toward)."""
    gained: list[str] = []
    lost: list[str] = []
    for rule_id in sorted(set(before) - set(after)):
        slots = participant.support.get(rule_id, set())
        slots.discard(slot)
        if not slots:
            participant.support.pop(rule_id, None)
            lost.append(rule_id)
    for rule_id in sorted(set(after) - set(before)):
        slots = participant.support.setdefault(rule_id, set())
        if not slots:
            gained.append(rule_id)
        slots.add(slot)
    return sorted(gained), sorted(lost)


def _boundary(rule: HaltingRule, count: int, n: int) -> tuple[int | None, dict[str, Any]]:
    if rule.bayesian is None:
        return rule.participants, {}
    bayes, looks = rule.bayesian, max(n, count)
    b_n = boundary(looks, bayes.prior_alpha, bayes.prior_beta, bayes.target_rate, bayes.threshold)
    posterior = posterior_exceeds(count, looks, bayes.prior_alpha, bayes.prior_beta, bayes.target_rate)
    return b_n, {"posterior": round(posterior, 6), "target_rate": bayes.target_rate, "threshold": bayes.threshold}


def count_participant(
    config: StudyConfig,
    study: StudyState,
    rule_id: str,
    *,
    subject_id: str,
    evidence: tuple[str, ...],
    trigger: tuple[str, datetime],
) -> Signal | None:
    """Count a participant who newly qualifies, and fire the rule if that reaches its boundary
    while it is not latched. `trigger` = (dedup key, event time) of the qualifying record."""
    counted = study.counted.setdefault(rule_id, {})
    counted[subject_id] = evidence
    rule = next(rule for rule in config.halting if rule.rule_id == rule_id)
    count, n = len(counted), len(study.dosed)
    b_n, statistics = _boundary(rule, count, n)
    if rule_id in study.latched or b_n is None or count < b_n:
        return None
    study.latched.add(rule_id)
    detail = {"count": count, "n": n, "boundary": b_n, "subjects": list(counted), **statistics}
    return _halt_signal(config, rule_id, counted, detail, trigger)


def _halt_signal(
    config: StudyConfig,
    rule_id: str,
    counted: dict[str, tuple[str, ...]],
    detail: dict[str, Any],
    trigger: tuple[str, datetime],
) -> Signal:
    evidence = list(dict.fromkeys(key for keys in counted.values() for key in keys))
    outcome = config.outcomes[rule_id]
    return build_signal(
        signal_id=deterministic_id(rule_id, *evidence, trigger[0]),
        study_id=config.study_id,
        subject_id=None,
        rule_id=rule_id,
        severity=outcome.severity,
        action=outcome.action,
        status="RAISED",
        observed_at=trigger[1],
        evidence=evidence,
        detail={**detail, "config_version": config.config_version},
    )


def uncount_participant(study: StudyState, rule_id: str, subject_id: str) -> None:
    """A participant whose qualifying signals were all retracted stops counting (§6)."""
    study.counted.get(rule_id, {}).pop(subject_id, None)


def resume(study: StudyState, rule_id: str | None) -> None:
    """A DSMB RESUME unlatches one halting rule, or all of them when it names none."""
    if rule_id is None:
        study.latched.clear()
    else:
        study.latched.discard(rule_id)
