"""The primary endpoint, "no increase in serious infections": each participant's run-in against their
own treatment period (DOMAIN §1, §7.2 item 8, §7.3 take-aways).

Exposure: run-in from enrolment (without an ENROLLED record: the planned run-in before the first dose)
to the first dose; treatment from the first-dose date for the planned treatment days, both stopped at
the data cut and at withdrawal. An event counts in the period its onset falls in (first-dose date
inclusive = treatment, SAFETY_RULES §6); follow-up events count in neither.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from services.dashboard.domain.plan import MonitoringPlan
from services.dashboard.domain.statistics import ConditionalTest, Rate, conditional_exact_test, exposure_adjusted_rate

DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class EndpointParticipant:
    subject_id: str
    enrolled_at: datetime | None
    first_dose: datetime | None
    withdrawn_at: datetime | None
    event_onsets: tuple[datetime, ...]


@dataclass(frozen=True)
class Windows:
    run_in: tuple[datetime, datetime] | None
    treatment: tuple[datetime, datetime] | None


@dataclass(frozen=True)
class EndpointSummary:
    label: str
    run_in: Rate
    treatment: Rate
    test: ConditionalTest
    participants: int
    confidence: float


def _midnight(moment: datetime) -> datetime:
    return datetime.combine(moment.astimezone(UTC).date(), time.min, UTC)


def windows(person: EndpointParticipant, plan: MonitoringPlan, cut: datetime) -> Windows:
    stop = min(cut, person.withdrawn_at) if person.withdrawn_at else cut
    if person.first_dose is None:
        start = person.enrolled_at
        return Windows(None if start is None or start >= stop else (start, stop), None)
    dose_day = _midnight(person.first_dose)
    run_in_start = person.enrolled_at or dose_day - timedelta(days=plan.run_in_days)
    run_in = (run_in_start, min(dose_day, stop)) if run_in_start < min(dose_day, stop) else None
    treatment_end = min(dose_day + timedelta(days=plan.treatment_days), stop)
    return Windows(run_in, (dose_day, treatment_end) if dose_day < treatment_end else None)


def _years(window: tuple[datetime, datetime] | None) -> float:
    return 0.0 if window is None else (window[1] - window[0]).total_seconds() / 86400 / DAYS_PER_YEAR


def _within(onset: datetime, window: tuple[datetime, datetime] | None) -> bool:
    return window is not None and window[0] <= onset < window[1]


def count_in(onsets: Iterable[datetime], window: tuple[datetime, datetime] | None) -> int:
    return sum(1 for onset in onsets if _within(onset, window))


def endpoint_summary(people: Sequence[EndpointParticipant], plan: MonitoringPlan, cut: datetime) -> EndpointSummary:
    run_in_events = treatment_events = 0
    run_in_years = treatment_years = 0.0
    for person in people:
        spans = windows(person, plan, cut)
        run_in_events += count_in(person.event_onsets, spans.run_in)
        treatment_events += count_in(person.event_onsets, spans.treatment)
        run_in_years += _years(spans.run_in)
        treatment_years += _years(spans.treatment)
    return EndpointSummary(
        label=plan.endpoint_label,
        run_in=exposure_adjusted_rate(run_in_events, run_in_years, plan.confidence),
        treatment=exposure_adjusted_rate(treatment_events, treatment_years, plan.confidence),
        test=conditional_exact_test(run_in_events, treatment_events, run_in_years, treatment_years),
        participants=len(people),
        confidence=plan.confidence,
    )
