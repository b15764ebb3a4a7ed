"""Participant-level laboratory rules of the graded families and LAB-DQ (SAFETY_RULES §2, §6 "Values").

Graded families: LAB-ANC-1..4 (neutrophils), LAB-PLT-3/4, LAB-HGB-3, LAB-LFT-3/4 (ALT, AST),
LAB-CREAT-2. One rule per result per family: the rule configured for the result's grade.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.safety_rules.domain.config_model import StudyConfig, TestScale
from services.safety_rules.domain.grading import Limits, memo_grade
from services.safety_rules.domain.model import Candidate, RuleContext, number
from services.safety_rules.domain.results import LabValue
from services.safety_rules.domain.state import ParticipantState


@dataclass(frozen=True, slots=True)
class Baseline:
    """BASE: the last valid value of the test strictly before the first-dose date (SAFETY_RULES §1, §6)."""

    result: LabValue
    abnormal: bool

    @property
    def value(self) -> Decimal:
        """The baseline value (a usable result always has one)."""
        assert self.result.value is not None
        return self.result.value


def _last_valid_before(participant: ParticipantState, test: str, cutoff: datetime) -> LabValue | None:
    for key in participant.series_of(test).before(cutoff):
        earlier = participant.results[key]
        if earlier.usable and earlier.comparator is None:
            return earlier
    return None


def baseline_of(participant: ParticipantState, result: LabValue, abnormal_above_uln: bool) -> Baseline | None:
    """BASE for a result on or after the first-dose date; None before it or without a valid earlier
    value. The lookup is cached per test until a pre-dose result of that test or the first dose changes."""
    cutoff = participant.first_dose_start
    if cutoff is None or result.at < cutoff:
        return None
    cache = participant.baselines
    if result.test in cache:
        found = cache[result.test]
    else:
        found = cache[result.test] = _last_valid_before(participant, result.test, cutoff)
    if found is None or found.value is None:
        return None
    above = found.uln is not None and found.value > found.uln
    return Baseline(found, abnormal_above_uln and above)


def _used_baseline(scale: TestScale, baseline: Baseline | None) -> Baseline | None:
    if baseline is None or (scale.abnormal_baseline and not baseline.abnormal):
        return None
    return baseline


def _grade_detail(config: StudyConfig, result: LabValue, grade: int, baseline: Baseline | None) -> dict[str, Any]:
    assert result.value is not None
    scale = config.scale.tests[result.test]
    detail: dict[str, Any] = {
        "test": result.test,
        "term": scale.term,
        "grade": grade,
        "value": number(result.value),
        "unit": result.unit,
        "scale": config.scale.scale,
        "version": config.scale.version,
    }
    for name, limit in (("comparator", result.comparator), ("lln", result.lln), ("uln", result.uln)):
        if limit is not None:
            detail[name] = limit if isinstance(limit, str) else number(limit)
    if baseline is not None:
        detail["base"] = number(baseline.value)
        if baseline.result.uln is not None:
            detail["base_uln"] = number(baseline.result.uln)
        detail["baseline_abnormal"] = baseline.abnormal
    if result.derived:
        detail["derived"] = True
    return detail


def graded_result(ctx: RuleContext, key: str) -> Candidate | None:
    """LAB-ANC-1..4, LAB-PLT-3/4, LAB-HGB-3, LAB-LFT-3/4, LAB-CREAT-2 (SAFETY_RULES §2).

    Grades a final or corrected result on the configured scale (CTCAE v5.0: DOMAIN §3.1-§3.2) and
    returns the one rule configured for that grade. ALT/AST/bilirubin grade against BASE when the
    baseline is abnormal (BASE above the ULN reported with it), else against ULN; creatinine against
    either. Undetermined (a needed LLN/ULN missing) fires nothing.
    """
    result = ctx.participant.results.get(key)
    rules = ctx.config.graded_rules.get(result.test) if result is not None else None
    if result is None or rules is None or not result.usable:
        return None
    assert result.value is not None
    scale = ctx.config.scale.tests[result.test]
    baseline = baseline_of(ctx.participant, result, scale.abnormal_baseline) if scale.uses_base else None
    limits = Limits(
        result.lln, result.uln, None if baseline is None else baseline.value, bool(baseline and baseline.abnormal)
    )
    grade = memo_grade(scale, result.value, result.comparator, limits)
    rule_id = None if grade is None else rules.get(grade)
    if rule_id is None or grade is None:
        return None
    used_base = _used_baseline(scale, baseline)
    extra = () if used_base is None else (used_base.result,)
    return Candidate(
        rule_id=rule_id,
        evidence=result.evidence + tuple(b.source for b in extra),
        used=(key, *result.inputs, *(b.key for b in extra)),
        event_at=result.at,
        detail=_grade_detail(ctx.config, result, grade, used_base),
    )


def data_quality(ctx: RuleContext, key: str) -> Candidate | None:
    """LAB-DQ (SAFETY_RULES §2, §6): a final or corrected result of a test that feeds a rule, which
    cannot be graded safely (unknown unit, non-numeric, range/ratio, implausible magnitude)."""
    result = ctx.participant.results.get(key)
    if result is None or result.issue is None or result.status not in ("final", "corrected"):
        return None
    if result.test not in ctx.config.data_quality.tests:
        return None
    detail = {"test": result.test, "reason": result.issue, "unit": result.unit}
    return Candidate("LAB-DQ", result.evidence, (key,), result.at, detail)
