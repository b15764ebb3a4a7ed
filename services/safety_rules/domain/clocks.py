"""Regulatory clocks SPONSOR-24H, IND-7D, IND-15D and CLOCK-BREACH (SAFETY_RULES §5; DOMAIN §6.4).

Day 0 is the ingestion time of the AE version that first qualified (`recorded_at`); due_at adds the
configured period. A REG record stops a clock; a clock whose due_at has passed without one raises a
single CLOCK-BREACH.
"""

from __future__ import annotations

from services.safety_rules.domain.adverse_events import ae_candidate
from services.safety_rules.domain.config_model import StudyConfig
from services.safety_rules.domain.model import Candidate, RuleContext
from services.safety_rules.domain.signals import build_signal
from services.safety_rules.domain.state import AeFacts
from services.safety_rules.domain.study_state import OpenClock
from shared.events import Signal, deterministic_id

BREACH = "CLOCK-BREACH"


def _clock(ctx: RuleContext, rule_id: str, ae: AeFacts) -> Candidate:
    due = ctx.config.clock_due[rule_id]
    return ae_candidate(rule_id, ae, day0=ae.recorded_at, due_at=ae.recorded_at + due)


def sponsor_clock(ctx: RuleContext, ae_id: str) -> Candidate | None:
    """SPONSOR-24H (SAFETY_RULES §5; 21 CFR 312.64(b)): any SAE starts the investigator-to-sponsor clock."""
    ae = ctx.participant.adverse_events.get(ae_id)
    return _clock(ctx, "SPONSOR-24H", ae) if ae is not None and ae.serious else None


def ind_clock(ctx: RuleContext, ae_id: str) -> Candidate | None:
    """IND-7D / IND-15D (SAFETY_RULES §5; 21 CFR 312.32(c)): a SUSAR (serious, related, unexpected)
    starts the 7-day IND safety report clock when fatal or life-threatening, else the 15-day one."""
    ae = ctx.participant.adverse_events.get(ae_id)
    if ae is None or not (ae.serious and ae.related and not ae.expected):
        return None
    return _clock(ctx, "IND-7D" if ae.fatal or ae.life_threatening else "IND-15D", ae)


def breach_signal(config: StudyConfig, clock: OpenClock) -> Signal:
    """CLOCK-BREACH (SAFETY_RULES §5): the clock passed its due_at without a submission.

    observed_at is the clock's Day 0 (SAFETY_RULES §6), so the signal is the same in replay and live
    whenever it is emitted.
    """
    outcome = config.outcomes[BREACH]
    return build_signal(
        signal_id=deterministic_id(BREACH, clock.signal_id),
        study_id=config.study_id,
        subject_id=clock.subject_id,
        rule_id=BREACH,
        severity=outcome.severity,
        action=outcome.action,
        status="RAISED",
        observed_at=clock.day0,
        evidence=list(clock.evidence),
        detail={
            "clock": clock.rule_id,
            "clock_signal_id": clock.signal_id,
            "ae_id": clock.ae_id,
            "config_version": config.config_version,
        },
        due_at=clock.due_at,
    )
