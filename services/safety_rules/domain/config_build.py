"""Building the typed `StudyConfig` from a schema-valid document, with cross-reference checks.

Numbers become Decimals through their YAML text (`Decimal(str(x))`), so 0.5 is exactly 0.5.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

from services.safety_rules.domain.config_model import (
    AdverseEventRules,
    AncDerivation,
    BayesianBoundary,
    Criterion,
    DataQualityRule,
    Expectedness,
    FebrileNeutropeniaRule,
    GradeStep,
    GradingScale,
    HaltingRule,
    HysLawRule,
    Outcome,
    StudyConfig,
    TermMatch,
    TestRoles,
    TestScale,
)
from services.safety_rules.domain.registry import PARTICIPANT_RULE_IDS
from services.safety_rules.domain.terminology import ctcae_v5

Doc = Mapping[str, Any]


def _dec(value: int | float) -> Decimal:
    return Decimal(str(value))


def _criterion(doc: Doc) -> Criterion:
    if "value" in doc:
        return Criterion(doc["op"], _dec(doc["value"]), None, None)
    return Criterion(doc["op"], _dec(doc.get("times", 1)), doc["ref"], doc.get("baseline"))


def _test_scale(test: str, doc: Doc) -> TestScale:
    steps = sorted(
        (GradeStep(step["grade"], tuple(_criterion(c) for c in step["any"])) for step in doc.get("grades", [])),
        key=lambda step: -step.grade,
    )
    criteria = [c for step in steps for c in step.any_of]
    abnormal = doc.get("abnormal_baseline") == "base_above_uln"
    if any(c.baseline for c in criteria) and not abnormal:
        raise ValueError(f"grading/tests/{test}: baseline-specific criteria need `abnormal_baseline`")
    return TestScale(
        test=test,
        unit=doc["unit"],
        term=doc.get("term"),
        meddra=doc.get("meddra"),
        grades=tuple(steps),
        abnormal_baseline=abnormal,
        uses_base=any(c.ref == "BASE" for c in criteria),
    )


def _graded_rules(rules: Doc, scale: GradingScale) -> dict[str, dict[int, str]]:
    """test -> grade -> rule id; one rule per grade of a test (one rule per result per family)."""
    table: dict[str, dict[int, str]] = {}
    pairs = [
        (rid, test, grade)
        for rid, doc in rules.items()
        if "grades" in doc
        for test in doc["tests"]
        for grade in doc["grades"]
    ]
    for rule_id, test, grade in pairs:
        if test not in scale.tests or not scale.tests[test].grades:
            raise ValueError(f"rules/{rule_id}: test {test} has no grades in the grading scale")
        other = table.setdefault(test, {}).setdefault(grade, rule_id)
        if other != rule_id:
            raise ValueError(f"rules/{rule_id}: grade {grade} of {test} is already {other}")
    return table


def _term(doc: Doc) -> TermMatch:
    return TermMatch(doc["term"], doc["meddra"], doc.get("min_grade"))


def _adverse_events(rules: Doc, doc: Doc) -> AdverseEventRules:
    isr = rules["AE-ISR-3"]
    return AdverseEventRules(
        infection_soc=doc["infection_soc"]["name"].casefold(),
        infection_soc_code=doc["infection_soc"]["code"],
        serious_infection_min_grade=rules["AE-SI"]["min_grade"],
        infection_notify_grade=rules["AE-INF-2"]["grade"],
        anaphylaxis=tuple(_term(t) for t in rules["AE-ANA"]["terms"]),
        injection_site_min_grade=isr["min_grade"],
        injection_site_terms=tuple(_term(t) for t in isr["terms"]),
        injection_site_findings=tuple(
            (row["grade"], frozenset(row["findings"]))
            for row in sorted(isr["findings_grades"], key=lambda r: -r["grade"])
        ),
        related_causality=frozenset(" ".join(value.split()).casefold() for value in doc["related_causality"]),
        fatal_outcomes=frozenset(value.casefold() for value in doc["fatal_outcomes"]),
        fatal_grade=doc["fatal_grade"],
    )


def _halting(rule_id: str, doc: Doc) -> HaltingRule:
    unknown = sorted(set(doc["qualifying_rules"]) - PARTICIPANT_RULE_IDS)
    if unknown:
        raise ValueError(f"halting/{rule_id}: qualifying rules unknown: {', '.join(unknown)}")
    bayes = doc["boundary"].get("bayesian")
    return HaltingRule(
        rule_id=rule_id,
        qualifying_rules=frozenset(doc["qualifying_rules"]),
        require=frozenset(doc.get("require", [])),
        any_phase=doc["phase"] == "any",
        participants=doc["boundary"].get("participants"),
        bayesian=None
        if bayes is None
        else BayesianBoundary(
            float(bayes["prior_alpha"]),
            float(bayes["prior_beta"]),
            float(bayes["target_rate"]),
            float(bayes["threshold"]),
        ),
    )


def _due(text: str) -> timedelta:
    amount = int(text[:-1])
    return timedelta(hours=amount) if text.endswith("h") else timedelta(days=amount)


def _composites(rules: Doc) -> tuple[FebrileNeutropeniaRule, HysLawRule, DataQualityRule]:
    fn, hys, dq = rules["LAB-FN"], rules["LAB-HYS"], rules["LAB-DQ"]
    return (
        FebrileNeutropeniaRule(
            anc_test=fn["anc_test"],
            anc_below=_dec(fn["anc_below"]),
            temperature_test=fn["temperature_test"],
            window=timedelta(hours=fn["window_hours"]),
            single_above=_dec(fn["single_reading_above"]),
            sustained_at_least=_dec(fn["sustained_at_least"]),
            sustained_apart=timedelta(minutes=fn["sustained_apart_more_than_minutes"]),
        ),
        HysLawRule(
            aminotransferase_tests=frozenset(hys["aminotransferase_tests"]),
            aminotransferase_at_least=_dec(hys["aminotransferase_at_least_x_uln"]),
            bilirubin_test=hys["bilirubin_test"],
            bilirubin_above=_dec(hys["bilirubin_above_x_uln"]),
            alp_test=hys["alp_test"],
            alp_below=_dec(hys["alp_below_x_uln"]),
            window=timedelta(hours=hys["window_hours"]),
        ),
        DataQualityRule(
            tests=frozenset(dq["tests"]),
            plausible_max={test: _dec(limit) for test, limit in dq["plausible_max"].items()},
        ),
    )


def _expected(doc: Doc) -> Expectedness:
    return Expectedness(
        soc_names=frozenset(soc["name"].casefold() for soc in doc["socs"]),
        soc_codes=frozenset(soc["code"] for soc in doc["socs"]),
        codes=frozenset(term["meddra"] for term in doc["terms"]),
        terms=frozenset(term["term"].casefold() for term in doc["terms"]),
    )


def _outcomes(doc: Doc) -> dict[str, Outcome]:
    sections = (doc["rules"], doc["halting"], doc["clocks"])
    return {rid: Outcome(rid, rule["severity"], rule["action"]) for s in sections for rid, rule in s.items()}


def _roles(
    scale: GradingScale,
    graded: Mapping[str, object],
    anc: AncDerivation,
    composites: tuple[FebrileNeutropeniaRule, HysLawRule, DataQualityRule],
) -> dict[str, TestRoles]:
    fn, hys, dq = composites
    used = {*graded, *anc.inputs, fn.anc_test, fn.temperature_test, *hys.aminotransferase_tests}
    used |= {hys.bilirubin_test, hys.alp_test, *dq.tests, *dq.plausible_max}
    missing = sorted(used - set(scale.tests))
    if missing:
        raise ValueError(f"tests used by rules but absent from grading/tests: {', '.join(missing)}")
    hys_window = {*hys.aminotransferase_tests, hys.alp_test}
    indexed = {fn.temperature_test, hys.bilirubin_test, *hys_window} | {
        t for t, s in scale.tests.items() if s.uses_base
    }
    return {
        test: TestRoles(
            unit=scale.tests[test].unit,
            graded=test in graded,
            indexed=test in indexed,
            data_quality=test in dq.tests,
            plausible_max=dq.plausible_max.get(test),
            derivation_input=test in anc.inputs,
            fn_anchor=test == fn.anc_test,
            hys_anchor=test == hys.bilirubin_test,
            window="LAB-FN" if test == fn.temperature_test else "LAB-HYS" if test in hys_window else None,
        )
        for test in sorted(used)
    }


def build_study(doc: Doc) -> StudyConfig:
    """The typed configuration of a schema-valid document; ValueError on a broken cross-reference."""
    grading = doc["grading"]
    tests = {test: _test_scale(test, body) for test, body in grading["tests"].items()}
    scale = GradingScale(grading["scale"], grading["version"], tests)
    derivation = doc["anc_derivation"]
    required, optional = derivation["required_percent_tests"], derivation.get("optional_percent_tests", [])
    anc = AncDerivation(
        derivation["derived_test"],
        derivation["wbc_test"],
        tuple(required),
        tuple(optional),
        inputs=frozenset((derivation["derived_test"], derivation["wbc_test"], *required, *optional)),
    )
    graded = _graded_rules(doc["rules"], scale)
    fn, hys, dq = _composites(doc["rules"])
    return StudyConfig(
        study_id=doc["study_id"],
        config_version=doc["config_version"],
        scale=scale,
        anc_derivation=anc,
        graded_rules=graded,
        febrile_neutropenia=fn,
        hys_law=hys,
        data_quality=dq,
        adverse_events=_adverse_events(doc["rules"], doc["adverse_events"]),
        halting=tuple(_halting(rule_id, body) for rule_id, body in doc["halting"].items()),
        clock_due={rule_id: _due(body["due"]) for rule_id, body in doc["clocks"].items() if "due" in body},
        expected=_expected(doc["expected_terms"]),
        missed_doses_not_evaluable=doc["rules"]["ADH-EVAL"]["missed_doses"],
        outcomes=_outcomes(doc),
        terminology=ctcae_v5(),
        roles=_roles(scale, graded, anc, (fn, hys, dq)),
    )
