"""Grading a value against the study's scale (SAFETY_RULES §1, §6 "Values"; DOMAIN §3).

Three-valued: a grade, 0, or undetermined (None) when a limit the decision needs (LLN, ULN) is
missing. A missing BASE is not undetermined: without a baseline the grade is taken against ULN.
`<x` / `>x` values count as certainly below / above x: a criterion holds only if it holds for every
value the comparator allows, and `>x` never satisfies a "below" criterion (nor `<x` an "above" one).
"""

from __future__ import annotations

from decimal import Decimal
from typing import NamedTuple

from services.safety_rules.domain.config_model import Criterion, Op, TestScale
from services.safety_rules.domain.memo import remember, table


class Limits(NamedTuple):
    """What a grade may be taken against: the result's own LLN/ULN and the participant's baseline."""

    lln: Decimal | None
    uln: Decimal | None
    base: Decimal | None
    baseline_abnormal: bool


def certainly(op: Op, value: Decimal, comparator: str | None, threshold: Decimal) -> bool:
    """`value <op> threshold` for every true value the comparator (`<`, `<=`, `>`, `>=`) allows."""
    if comparator is None:
        if op == "lt":
            return value < threshold
        if op == "le":
            return value <= threshold
        if op == "gt":
            return value > threshold
        return value >= threshold
    below = op in ("lt", "le")
    if below != comparator.startswith("<"):
        return False
    if op == "lt":
        return value <= threshold if comparator == "<" else value < threshold
    if op == "gt":
        return value >= threshold if comparator == ">" else value > threshold
    return value <= threshold if below else value >= threshold


def _threshold(criterion: Criterion, limits: Limits) -> Decimal | None:
    ref = criterion.ref
    if ref is None:
        return criterion.amount
    limit = limits.uln if ref == "ULN" else limits.lln if ref == "LLN" else limits.base
    return None if limit is None else criterion.amount * limit


def grade_value(scale: TestScale, value: Decimal, comparator: str | None, limits: Limits) -> int | None:
    """The highest grade whose criteria hold; 0 when none does; None when undetermined.

    Grades are tried from the highest down, which gives the interval semantics of SAFETY_RULES §1
    ("< A - B" means `value < A and value >= B`). A grade that cannot be decided because a criterion
    lacks its LLN/ULN makes the result undetermined, since a lower grade would then be a guess.
    Baseline-specific criteria apply to their baseline only; a BASE criterion without a BASE does
    not apply (the grade is then taken against ULN).
    """
    abnormal = limits.baseline_abnormal
    for step in scale.grades:
        unknown = False
        for criterion in step.any_of:
            if criterion.baseline is not None and (criterion.baseline == "abnormal") != abnormal:
                continue
            threshold = _threshold(criterion, limits)
            if threshold is None:
                unknown = unknown or criterion.ref != "BASE"
            elif certainly(criterion.op, value, comparator, threshold):
                return step.grade
        if unknown:
            return None
    return 0


def memo_grade(scale: TestScale, value: Decimal, comparator: str | None, limits: Limits) -> int | None:
    """`grade_value`, remembered per scale: few distinct (value, comparator, limits) recur in a study."""
    grades = table(scale, "grade")
    key = (value, comparator, *limits)  # Decimal equality is numeric, as is grading
    if key in grades:
        grade: int | None = grades[key]
        return grade
    return remember(grades, key, grade_value(scale, value, comparator, limits))  # type: ignore[no-any-return]
