"""The tables of the DSMB packet (DOMAIN §6.5) from the engine's evaluation of a cut: accrual,
exposure and adherence, AEs by SOC and term x worst grade x relatedness, SAE listing, lab shifts
(baseline grade -> worst post-baseline grade), stopping rules, the primary endpoint."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.dashboard.domain.endpoint import EndpointParticipant, EndpointSummary, endpoint_summary
from services.dashboard.domain.halting import EngineStudyState, HaltingRow, halting_table
from services.dashboard.domain.participants import ParticipantFacts, ParticipantView, participant_view
from services.dashboard.domain.plan import MonitoringPlan
from services.safety_rules.domain import ParticipantState, StudyConfig
from services.safety_rules.domain.grading import Limits, grade_value
from services.safety_rules.domain.lab import baseline_of
from services.safety_rules.domain.results import LabValue
from shared.events import DispositionRecorded, Signal
from trialwatch.report.evaluation import Evaluation
from trialwatch.report.snapshot import Snapshot

GRADES = (1, 2, 3, 4, 5)
SHIFT_GRADES = (0, 1, 2, 3, 4)


@dataclass(frozen=True)
class AeRow:
    soc: str
    term: str
    participants: int
    by_worst_grade: tuple[int, ...]
    related: int
    serious: int


@dataclass(frozen=True)
class ShiftTable:
    test: str
    counts: dict[tuple[str, str], int]
    rows: tuple[str, ...]
    columns: tuple[str, ...]


def dispositions(snapshot: Snapshot) -> dict[str, dict[str, datetime]]:
    found: dict[str, dict[str, datetime]] = defaultdict(dict)
    for record in snapshot.records:
        for event in record:
            if isinstance(event, DispositionRecorded) and event.subject_id:
                found[event.subject_id].setdefault(event.decision, event.occurred_at)
    return found


def _dose_dates(state: ParticipantState, given: bool) -> int:
    return len({dose.at.astimezone(UTC).date() for dose in state.doses.values() if dose.given is given})


def participant_facts(evaluation: Evaluation, snapshot: Snapshot) -> list[ParticipantFacts]:
    decided = dispositions(snapshot)
    facts = []
    for subject in sorted(set(evaluation.participants) | set(decided)):
        state = evaluation.participants.get(subject) or ParticipantState(subject)
        given = [dose.at for dose in state.doses.values() if dose.given]
        ds = decided.get(subject, {})
        facts.append(
            ParticipantFacts(
                subject,
                ds.get("ENROLLED"),
                min(given, default=None),
                _dose_dates(state, True),
                _dose_dates(state, False),
                ds.get("WITHDRAWN"),
                ds.get("COMPLETED"),
                None,
            )
        )
    return facts


def exposure(facts: Iterable[ParticipantFacts], plan: MonitoringPlan, cut: datetime) -> list[ParticipantView]:
    return [participant_view(f, plan, cut) for f in facts]


def ae_table(evaluation: Evaluation) -> list[AeRow]:
    worst: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    related: dict[tuple[str, str], set[str]] = defaultdict(set)
    serious: dict[tuple[str, str], set[str]] = defaultdict(set)
    for subject, state in evaluation.participants.items():
        for ae in state.adverse_events.values():
            key = (ae.soc or "(SOC not coded)", ae.term)
            worst[key][subject] = max(worst[key].get(subject, 0), ae.grade or 0)
            related[key] |= {subject} if ae.related else set()
            serious[key] |= {subject} if ae.serious else set()
    rows = []
    for key in sorted(worst):
        grades = Counter(worst[key].values())
        rows.append(
            AeRow(
                key[0], key[1], len(worst[key]), tuple(grades[g] for g in GRADES), len(related[key]), len(serious[key])
            )
        )
    return rows


def sae_listing(evaluation: Evaluation) -> list[dict[str, Any]]:
    listing = [
        {"subject": subject, "ae_id": ae.ae_id, "term": ae.term, "soc": ae.soc, "onset": ae.onset, "grade": ae.grade,
         "criteria": ", ".join(ae.criteria), "related": ae.related, "expected": ae.expected, "fatal": ae.fatal}
        for subject, state in evaluation.participants.items()
        for ae in state.adverse_events.values()
        if ae.serious
    ]  # fmt: skip
    return sorted(listing, key=lambda row: (row["onset"], row["subject"], row["ae_id"]))


def _grade(config: StudyConfig, state: ParticipantState, result: LabValue) -> int | None:
    scale = config.scale.tests[result.test]
    if not scale.grades or not result.usable or result.value is None:
        return None
    baseline = baseline_of(state, result, scale.abnormal_baseline) if scale.uses_base else None
    base = None if baseline is None else baseline.value
    limits = Limits(result.lln, result.uln, base, bool(baseline and baseline.abnormal))
    return grade_value(scale, result.value, result.comparator, limits)


def _label(grade: int | None) -> str:
    return "undetermined" if grade is None else f"G{grade}"


def shift_table(config: StudyConfig, evaluation: Evaluation, test: str) -> ShiftTable:
    """Baseline (last valid value before the first dose) grade -> worst grade on or after it."""
    counts: Counter[tuple[str, str]] = Counter()
    for state in evaluation.participants.values():
        cutoff = state.first_dose_start
        values = sorted((r for r in state.results.values() if r.test == test and r.usable), key=lambda r: r.at)
        if cutoff is None or not values:
            continue
        before = [r for r in values if r.at < cutoff]
        after = [grade for r in values if r.at >= cutoff and (grade := _grade(config, state, r)) is not None]
        base = "missing" if not before else _label(_grade(config, state, before[-1]))
        counts[(base, "none" if not after else _label(max(after)))] += 1
    rows = tuple(dict.fromkeys([*(f"G{g}" for g in SHIFT_GRADES), *sorted(b for b, _ in counts)]))
    columns = tuple(dict.fromkeys([*(f"G{g}" for g in SHIFT_GRADES), *sorted(w for _, w in counts)]))
    return ShiftTable(test, dict(counts), rows, columns)


def halting(plan: MonitoringPlan, evaluation: Evaluation) -> tuple[EngineStudyState, list[HaltingRow]]:
    state = EngineStudyState.from_json(evaluation.study.to_json())
    return state, halting_table(plan, state)


def standing(signals: Iterable[Signal], rule_id: str) -> list[Signal]:
    """Raised signals of a rule that no later retraction withdrew."""
    chosen = [s for s in signals if s.rule_id == rule_id]
    retracted = {s.retracts for s in chosen if s.status == "RETRACTED"}
    return [s for s in chosen if s.status == "RAISED" and s.signal_id not in retracted]


def endpoint(
    plan: MonitoringPlan, evaluation: Evaluation, facts: Iterable[ParticipantFacts], cut: datetime
) -> EndpointSummary:
    onsets: dict[str, list[datetime]] = defaultdict(list)
    for signal in standing(evaluation.signals, plan.endpoint_rule):
        onsets[signal.subject_id or ""].append(signal.observed_at)
    people = [
        EndpointParticipant(
            f.subject_id, f.enrolled_at, f.first_dose, f.withdrawn_at, tuple(sorted(onsets[f.subject_id]))
        )
        for f in facts
    ]
    return endpoint_summary(people, plan, cut)
