"""Halting status as the DMC reads it: for each H-rule the count against its boundary, and for the
Bayesian rule (H-SI) n, the posterior and b_n over n (SAFETY_RULES §4; DOMAIN §7.2 item 2).

Counts come from the engine's study state (participants counted per rule, participants dosed, latched
rules); the statistics are recomputed here from the configured prior, and must equal the engine's
H-SI signal detail (tested).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.dashboard.domain.plan import HaltingPlan, MonitoringPlan
from services.dashboard.domain.statistics import bayesian_boundary, posterior_exceeds


@dataclass(frozen=True)
class EngineStudyState:
    """The parts of the engine's study state the views use (safety_rules.study_state JSON)."""

    dosed: frozenset[str]
    counted: Mapping[str, tuple[str, ...]]
    latched: frozenset[str]

    @classmethod
    def from_json(cls, data: Mapping[str, object] | None) -> EngineStudyState:
        if not data:
            return cls(frozenset(), {}, frozenset())
        counted_pairs = data.get("counted", [])
        assert isinstance(counted_pairs, list)
        counted = {str(rule): tuple(str(pair[0]) for pair in subjects) for rule, subjects in counted_pairs}
        dosed, latched = data.get("dosed", []), data.get("latched", [])
        assert isinstance(dosed, list) and isinstance(latched, list)
        return cls(frozenset(map(str, dosed)), counted, frozenset(map(str, latched)))


@dataclass(frozen=True)
class HaltingRow:
    rule_id: str
    count: int
    n: int
    boundary: int | None
    posterior: float | None
    latched: bool
    subjects: tuple[str, ...]

    @property
    def reached(self) -> bool:
        return self.boundary is not None and self.count >= self.boundary


@dataclass(frozen=True)
class BoundaryPoint:
    n: int
    boundary: int | None
    posterior_at_boundary: float | None


@dataclass(frozen=True)
class PauseStatus:
    paused: bool
    since: datetime | None
    rule_id: str | None


def halting_row(rule: HaltingPlan, state: EngineStudyState) -> HaltingRow:
    subjects = state.counted.get(rule.rule_id, ())
    count, n = len(subjects), len(state.dosed)
    boundary, posterior = rule.participants, None
    if rule.bayesian is not None:
        bayes, looks = rule.bayesian, max(n, count)  # as the engine: x may exceed a stale n
        boundary = bayesian_boundary(looks, bayes.prior_alpha, bayes.prior_beta, bayes.target_rate, bayes.threshold)
        posterior = posterior_exceeds(count, looks, bayes.prior_alpha, bayes.prior_beta, bayes.target_rate)
    return HaltingRow(rule.rule_id, count, n, boundary, posterior, rule.rule_id in state.latched, subjects)


def halting_table(plan: MonitoringPlan, state: EngineStudyState) -> list[HaltingRow]:
    return [halting_row(rule, state) for rule in plan.halting]


def boundary_curve(rule: HaltingPlan, up_to: int) -> list[BoundaryPoint]:
    """b_n for n = 1..up_to, with the posterior at x = b_n (what crossing would show)."""
    if rule.bayesian is None:
        return [BoundaryPoint(n, rule.participants, None) for n in range(1, up_to + 1)]
    bayes = rule.bayesian
    points: list[BoundaryPoint] = []
    for n in range(1, up_to + 1):
        b_n = bayesian_boundary(n, bayes.prior_alpha, bayes.prior_beta, bayes.target_rate, bayes.threshold)
        at = None if b_n is None else posterior_exceeds(b_n, n, bayes.prior_alpha, bayes.prior_beta, bayes.target_rate)
        points.append(BoundaryPoint(n, b_n, at))
    return points


def pause_status(events: Sequence[tuple[str, datetime, str | None]]) -> PauseStatus:
    """From the notifier's pause events (kind, at, rule): a pause lasts until a RESUME of its rule (or of
    all rules) recorded at or after it - the notifier's own reading of its table."""
    resumes = [(at, rule_id) for kind, at, rule_id in events if kind == "resume"]
    standing = [
        (at, rule_id)
        for kind, at, rule_id in events
        if kind == "pause" and not any(r_at >= at and r_rule in (None, rule_id) for r_at, r_rule in resumes)
    ]
    if not standing:
        return PauseStatus(False, None, None)
    since, rule_id = min(standing, key=lambda item: item[0])
    return PauseStatus(True, since, rule_id)
