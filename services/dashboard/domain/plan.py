"""What the dashboard needs of the study's configuration, read from the two reviewed files as data.

- the study file (`studies/<study>.yaml`, the rules engine's): grading bands per test, the halting
  rules and the Bayesian prior of H-SI;
- the monitoring plan (`studies/<study>.monitoring.yaml`): planned participants, schedule,
  evaluability, the primary endpoint's rule and the tests to plot.
A missing key fails loudly at start-up (KeyError naming it), never silently at a page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Threshold:
    """One grade boundary of a test: an absolute value, or a multiple of the result's LLN/ULN."""

    grade: int
    op: str
    value: float | None = None
    ref: str | None = None
    times: float = 1.0

    def level(self, lln: float | None, uln: float | None) -> float | None:
        """Where the boundary lies for a result with these limits (None when it needs a missing one)."""
        if self.value is not None:
            return self.value
        limit = {"LLN": lln, "ULN": uln}.get(self.ref or "")
        return None if limit is None else limit * self.times


@dataclass(frozen=True)
class PlottedTest:
    test: str
    label: str
    unit: str
    thresholds: tuple[Threshold, ...]


@dataclass(frozen=True)
class BayesianBoundary:
    prior_alpha: float
    prior_beta: float
    target_rate: float
    threshold: float


@dataclass(frozen=True)
class HaltingPlan:
    rule_id: str
    qualifying_rules: tuple[str, ...]
    participants: int | None
    bayesian: BayesianBoundary | None


@dataclass(frozen=True)
class MonitoringPlan:
    study_id: str
    config_version: str
    planned_participants: int
    run_in_days: int
    treatment_days: int
    follow_up_days: int
    doses_planned: int
    doses_required: int
    endpoint_label: str
    endpoint_rule: str
    confidence: float
    plotted: tuple[PlottedTest, ...]
    shift_tests: tuple[str, ...]
    grading_units: Mapping[str, str]
    grading_thresholds: Mapping[str, tuple[Threshold, ...]]
    halting: tuple[HaltingPlan, ...]

    @property
    def missed_allowed(self) -> int:
        return self.doses_planned - self.doses_required


def _thresholds(grades: list[dict[str, Any]]) -> tuple[Threshold, ...]:
    """Boundaries drawable from a result alone: absolute, LLN or ULN with a normal baseline (not BASE)."""
    found: list[Threshold] = []
    for step in grades:
        for criterion in step["any"]:
            if criterion.get("ref") == "BASE" or criterion.get("baseline") == "abnormal":
                continue
            value = criterion.get("value")
            found.append(
                Threshold(
                    grade=int(step["grade"]),
                    op=str(criterion["op"]),
                    value=None if value is None else float(value),
                    ref=criterion.get("ref"),
                    times=float(criterion.get("times", 1)),
                )
            )
    return tuple(found)


def _halting(rule_id: str, data: Mapping[str, Any]) -> HaltingPlan:
    boundary = data["boundary"]
    bayes = boundary.get("bayesian")
    return HaltingPlan(
        rule_id=rule_id,
        qualifying_rules=tuple(data["qualifying_rules"]),
        participants=boundary.get("participants"),
        bayesian=None if bayes is None else BayesianBoundary(**{key: float(value) for key, value in bayes.items()}),
    )


def build_plan(study: Mapping[str, Any], monitoring: Mapping[str, Any]) -> MonitoringPlan:
    if study["study_id"] != monitoring["study_id"]:
        raise ValueError(f"monitoring plan of {monitoring['study_id']} given for study {study['study_id']}")
    tests = study["grading"]["tests"]
    thresholds = {name: _thresholds(spec.get("grades", [])) for name, spec in tests.items()}
    units = {name: str(spec["unit"]) for name, spec in tests.items()}
    plotted = tuple(
        PlottedTest(item["test"], item["label"], units[item["test"]], thresholds[item["test"]])
        for item in monitoring["timeline"]
    )
    schedule, evaluable, endpoint = monitoring["schedule"], monitoring["evaluability"], monitoring["primary_endpoint"]
    return MonitoringPlan(
        study_id=str(study["study_id"]),
        config_version=str(study["config_version"]),
        planned_participants=int(monitoring["planned_participants"]),
        run_in_days=int(schedule["run_in_days"]),
        treatment_days=int(schedule["treatment_days"]),
        follow_up_days=int(schedule["follow_up_days"]),
        doses_planned=int(evaluable["doses_planned"]),
        doses_required=int(evaluable["doses_required"]),
        endpoint_label=str(endpoint["label"]),
        endpoint_rule=str(endpoint["rule_id"]),
        confidence=float(endpoint["confidence"]),
        plotted=plotted,
        shift_tests=tuple(monitoring["lab_shift_tests"]),
        grading_units=units,
        grading_thresholds=thresholds,
        halting=tuple(_halting(rule_id, data) for rule_id, data in study["halting"].items()),
    )
