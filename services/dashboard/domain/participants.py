"""Each participant's phase, exposure and evaluability (DOMAIN §1: run-in, 90-day treatment, follow-up;
evaluable with >= 72 of 90 doses, no longer evaluable once 19 doses are missed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from services.dashboard.domain.plan import MonitoringPlan


@dataclass(frozen=True)
class ParticipantFacts:
    """What the database says about one participant (aggregated over their canonical events)."""

    subject_id: str
    enrolled_at: datetime | None
    first_dose: datetime | None
    doses_given: int
    doses_missed: int
    withdrawn_at: datetime | None
    completed_at: datetime | None
    last_data_at: datetime | None


@dataclass(frozen=True)
class ParticipantView:
    subject_id: str
    phase: str
    study_day: int | None
    doses_given: int
    doses_missed: int
    evaluability: str
    evaluable: bool | None
    last_data_at: datetime | None


def study_day(first_dose: datetime, now: datetime) -> int:
    """Day 1 = the first-dose date (DOMAIN §1); dates are compared in UTC."""
    return (now.astimezone(UTC).date() - first_dose.astimezone(UTC).date()).days + 1


def phase_of(facts: ParticipantFacts, plan: MonitoringPlan, now: datetime) -> tuple[str, int | None]:
    if facts.withdrawn_at is not None and facts.withdrawn_at <= now:
        return "withdrawn", None
    if facts.first_dose is None:
        return ("run-in" if facts.enrolled_at is not None else "screening"), None
    day = study_day(facts.first_dose, now)
    if facts.completed_at is not None and facts.completed_at <= now:
        return "completed", day
    if day <= plan.treatment_days:
        return "treatment", day
    if day <= plan.treatment_days + plan.follow_up_days:
        return "follow-up", day
    return "after follow-up", day  # "completed" only with a COMPLETED disposition


def evaluability(facts: ParticipantFacts, plan: MonitoringPlan) -> tuple[str, bool | None]:
    """Evaluable (>= required doses), not evaluable (more missed than the plan allows), or open."""
    if facts.doses_given >= plan.doses_required:
        return f"evaluable ({facts.doses_given} of {plan.doses_planned})", True
    if facts.doses_missed > plan.missed_allowed:
        return (
            f"not evaluable ({facts.doses_missed} missed; {plan.doses_required} of {plan.doses_planned} needed)",
            False,
        )
    return f"{facts.doses_given} of {plan.doses_required} needed", None


def participant_view(facts: ParticipantFacts, plan: MonitoringPlan, now: datetime) -> ParticipantView:
    phase, day = phase_of(facts, plan, now)
    text, evaluable = evaluability(facts, plan)
    return ParticipantView(
        subject_id=facts.subject_id,
        phase=phase,
        study_day=day,
        doses_given=facts.doses_given,
        doses_missed=facts.doses_missed,
        evaluability=text,
        evaluable=evaluable,
        last_data_at=facts.last_data_at,
    )
