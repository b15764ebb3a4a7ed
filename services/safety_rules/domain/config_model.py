"""The study configuration as typed, precomputed values (built by `config.load_study`).

Every clinical number of SAFETY_RULES.md arrives here from the study YAML; nothing in this module
holds one. Decimals stay Decimals so that grading compares exactly (SAFETY_RULES §1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Literal

from services.safety_rules.domain.terminology import Terminology
from shared.events.signal import Action, Severity

Op = Literal["lt", "le", "gt", "ge"]
Ref = Literal["LLN", "ULN", "BASE"]
BaselineMode = Literal["normal", "abnormal"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """Severity and action of one rule (SAFETY_RULES §1)."""

    rule_id: str
    severity: Severity
    action: Action


@dataclass(frozen=True, slots=True)
class Criterion:
    """`value <op> amount` (absolute) or `value <op> amount x ref` (LLN, ULN or BASE)."""

    op: Op
    amount: Decimal
    ref: Ref | None
    baseline: BaselineMode | None


@dataclass(frozen=True, slots=True)
class GradeStep:
    """A grade that holds when any of its criteria holds."""

    grade: int
    any_of: tuple[Criterion, ...]


@dataclass(frozen=True, slots=True)
class TestScale:
    """One test of the grading scale: canonical unit and grade cut-offs, highest grade first."""

    test: str
    unit: str
    term: str | None
    meddra: str | None
    grades: tuple[GradeStep, ...]
    abnormal_baseline: bool
    uses_base: bool


@dataclass(frozen=True, slots=True)
class GradingScale:
    """The study's grading scale (CTCAE v5.0 for ANAKINRA-AD), stamped on every grade."""

    scale: str
    version: str
    tests: Mapping[str, TestScale]


@dataclass(frozen=True, slots=True)
class AncDerivation:
    """ANC = WBC x (sum of percentages) / 100 when a specimen has no measured ANC (SAFETY_RULES §2)."""

    derived_test: str
    wbc_test: str
    required_percent: tuple[str, ...]
    optional_percent: tuple[str, ...]
    inputs: frozenset[str]


@dataclass(frozen=True, slots=True)
class FebrileNeutropeniaRule:
    """LAB-FN parameters (SAFETY_RULES §2, §6 composite rules)."""

    anc_test: str
    anc_below: Decimal
    temperature_test: str
    window: timedelta
    single_above: Decimal
    sustained_at_least: Decimal
    sustained_apart: timedelta


@dataclass(frozen=True, slots=True)
class HysLawRule:
    """LAB-HYS parameters (SAFETY_RULES §2, §6 composite rules)."""

    aminotransferase_tests: frozenset[str]
    aminotransferase_at_least: Decimal
    bilirubin_test: str
    bilirubin_above: Decimal
    alp_test: str
    alp_below: Decimal
    window: timedelta


@dataclass(frozen=True, slots=True)
class DataQualityRule:
    """LAB-DQ parameters: the tests that feed a rule and their plausibility limits."""

    tests: frozenset[str]
    plausible_max: Mapping[str, Decimal]


@dataclass(frozen=True, slots=True)
class TermMatch:
    """A CTCAE term (matched by MedDRA code or by name ignoring case), with an optional minimum grade."""

    term: str
    meddra: str
    min_grade: int | None


@dataclass(frozen=True, slots=True)
class AdverseEventRules:
    """Parameters of the clinical rules of SAFETY_RULES §3 and the AE semantics of §6."""

    infection_soc: str
    infection_soc_code: str
    serious_infection_min_grade: int
    infection_notify_grade: int
    anaphylaxis: tuple[TermMatch, ...]
    injection_site_min_grade: int
    injection_site_terms: tuple[TermMatch, ...]
    injection_site_findings: tuple[tuple[int, frozenset[str]], ...]
    related_causality: frozenset[str]
    fatal_outcomes: frozenset[str]
    fatal_grade: int


@dataclass(frozen=True, slots=True)
class BayesianBoundary:
    """Beta-binomial monitoring (DOMAIN §7.2): stop when P(p > target_rate | x, n) >= threshold."""

    prior_alpha: float
    prior_beta: float
    target_rate: float
    threshold: float


@dataclass(frozen=True, slots=True)
class HaltingRule:
    """A study-level rule of SAFETY_RULES §4."""

    rule_id: str
    qualifying_rules: frozenset[str]
    require: frozenset[str]
    any_phase: bool
    participants: int | None
    bayesian: BayesianBoundary | None


@dataclass(frozen=True, slots=True)
class Expectedness:
    """Reference safety information (SAFETY_RULES §5): expected SOCs, MedDRA codes and CTCAE terms."""

    soc_names: frozenset[str]
    soc_codes: frozenset[str]
    codes: frozenset[str]
    terms: frozenset[str]


@dataclass(frozen=True, slots=True)
class TestRoles:
    """What a stored test feeds, precomputed from the rules for the per-result path (`indexed`: its
    results are kept in time order, for composite windows or the baseline)."""

    unit: str
    graded: bool
    indexed: bool
    data_quality: bool
    plausible_max: Decimal | None
    derivation_input: bool
    fn_anchor: bool
    hys_anchor: bool
    window: Literal["LAB-FN", "LAB-HYS"] | None


@dataclass(frozen=True, slots=True)
class StudyConfig:
    """A validated study configuration; `outcomes` has one entry per rule id of the registry."""

    study_id: str
    config_version: str
    scale: GradingScale
    anc_derivation: AncDerivation
    graded_rules: Mapping[str, Mapping[int, str]]
    febrile_neutropenia: FebrileNeutropeniaRule
    hys_law: HysLawRule
    data_quality: DataQualityRule
    adverse_events: AdverseEventRules
    halting: tuple[HaltingRule, ...]
    clock_due: Mapping[str, timedelta]
    expected: Expectedness
    missed_doses_not_evaluable: int
    outcomes: Mapping[str, Outcome]
    terminology: Terminology
    roles: Mapping[str, TestRoles]
