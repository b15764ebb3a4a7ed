"""Composite laboratory rules LAB-FN and LAB-HYS (SAFETY_RULES §2, §6 "Composite rules").

They fire in addition to the grade rule of the same result. Windows are inclusive at both ends.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from services.safety_rules.domain.config_model import Op, StudyConfig
from services.safety_rules.domain.grading import certainly
from services.safety_rules.domain.model import Candidate, RuleContext, number
from services.safety_rules.domain.results import LabValue
from services.safety_rules.domain.state import ParticipantState


def holds(result: LabValue, op: Op, threshold: Decimal) -> bool:
    """The result's value certainly satisfies `value <op> threshold` (comparators included)."""
    return result.value is not None and certainly(op, result.value, result.comparator, threshold)


def vs_uln(result: LabValue, op: Op, times: Decimal) -> bool:
    """`value <op> times x ULN`, false without a ULN."""
    return result.uln is not None and holds(result, op, times * result.uln)


#: Names of the participant's anchor indexes: results that could anchor a composite rule.
FN_ANCHORS = "LAB-FN"
HYS_ANCHORS = "LAB-HYS"


def anchors_fn(config: StudyConfig, result: LabValue) -> bool:
    """An ANC below the LAB-FN limit: a temperature nearby may complete febrile neutropenia."""
    rule = config.febrile_neutropenia
    return result.test == rule.anc_test and result.usable and holds(result, "lt", rule.anc_below)


def anchors_hys(config: StudyConfig, result: LabValue) -> bool:
    """A bilirubin above the LAB-HYS multiple: an ALT/AST (or ALP) nearby decides Hy's law."""
    rule = config.hys_law
    return result.test == rule.bilirubin_test and result.usable and vs_uln(result, "gt", rule.bilirubin_above)


def _usable_between(participant: ParticipantState, test: str, start: datetime, end: datetime) -> list[LabValue]:
    results = (participant.results[key] for key in participant.series_of(test).between(start, end))
    return [result for result in results if result.usable]


def _nearest(results: list[LabValue], moment: datetime) -> LabValue:
    return min(results, key=lambda result: (abs(result.at - moment), result.at, result.key))


def _fever(ctx: RuleContext, anc: LabValue) -> tuple[str, list[LabValue]] | None:
    """A single reading above the single-reading limit, else two readings at or above the
    sustained limit more than the configured interval apart, all within the window of the sample."""
    rule = ctx.config.febrile_neutropenia
    temps = _usable_between(ctx.participant, rule.temperature_test, anc.at - rule.window, anc.at + rule.window)
    single = [t for t in temps if holds(t, "gt", rule.single_above)]
    if single:
        return "single", [_nearest(single, anc.at)]
    febrile = [t for t in temps if holds(t, "ge", rule.sustained_at_least)]
    if len(febrile) >= 2 and febrile[-1].at - febrile[0].at > rule.sustained_apart:
        return "sustained", [febrile[0], febrile[-1]]
    return None


def febrile_neutropenia(ctx: RuleContext, key: str) -> Candidate | None:
    """LAB-FN (SAFETY_RULES §2; CTCAE "Febrile neutropenia" G3, DOMAIN §3.1): ANC below the limit and,
    within the window of that sample (before or after), a temperature above the single-reading limit,
    or at/above the sustained limit in two readings more than the interval apart. Once per ANC sample,
    raised by whichever of ANC or temperature arrives last."""
    rule = ctx.config.febrile_neutropenia
    anc = ctx.participant.results.get(key)
    if anc is None or not anc.usable or not holds(anc, "lt", rule.anc_below):
        return None
    fever = _fever(ctx, anc)
    if fever is None:
        return None
    criterion, temps = fever
    assert anc.value is not None
    detail = {
        "anc": number(anc.value),
        "unit": anc.unit,
        "temperatures": [number(t.value) for t in temps if t.value is not None],
        "temperature_unit": temps[0].unit,
        "criterion": criterion,
        "derived": anc.derived,
    }
    evidence = anc.evidence + tuple(t.source for t in temps)
    used = (key, *anc.inputs, *(t.key for t in temps))
    return Candidate("LAB-FN", evidence, used, anc.at, detail)


def _ratio(result: LabValue) -> float | None:
    if result.value is None or result.uln is None or result.uln <= 0:
        return None
    return round(float(result.value / result.uln), 3)


def hys_law(ctx: RuleContext, key: str) -> Candidate | None:
    """LAB-HYS (SAFETY_RULES §2, §6; Hy's law, DOMAIN §2.1): total bilirubin above its ULN multiple,
    an ALT or AST at or above its ULN multiple within the window of it, and, when an ALP is known
    within the window, the ALP nearest the bilirubin below its ULN multiple. Once per bilirubin."""
    rule = ctx.config.hys_law
    bili = ctx.participant.results.get(key)
    if bili is None or not bili.usable or not vs_uln(bili, "gt", rule.bilirubin_above):
        return None
    start, end = bili.at - rule.window, bili.at + rule.window
    enzymes = [
        result
        for test in sorted(rule.aminotransferase_tests)
        for result in _usable_between(ctx.participant, test, start, end)
        if vs_uln(result, "ge", rule.aminotransferase_at_least)
    ]
    if not enzymes:
        return None
    enzyme = _nearest(enzymes, bili.at)
    alps = [alp for alp in _usable_between(ctx.participant, rule.alp_test, start, end) if alp.uln is not None]
    alp = _nearest(alps, bili.at) if alps else None
    if alp is not None and not vs_uln(alp, "lt", rule.alp_below):
        return None
    detail = {
        "bilirubin_x_uln": _ratio(bili),
        "aminotransferase": enzyme.test,
        "aminotransferase_x_uln": _ratio(enzyme),
        "alp_x_uln": None if alp is None else _ratio(alp),
    }
    linked = [enzyme] if alp is None else [enzyme, alp]
    evidence = bili.evidence + tuple(source for result in linked for source in result.evidence)
    used = (key, *(result.key for result in linked))
    return Candidate("LAB-HYS", evidence, used, bili.at, detail)
