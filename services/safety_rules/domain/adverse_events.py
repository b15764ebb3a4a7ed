"""Adverse-event classification and the rules AE-SI, AE-INF-2, AE-ANA, AE-SAE (SAFETY_RULES §3, §6).

Classification follows SAFETY_RULES §6 "Adverse events": SOC from AESOC, else the MedDRA code in the
CTCAE table, else the coded term, else the verbatim term; death = AESDTH, a fatal outcome or grade 5
(death implies serious); related = a configured causality value; expected per §5.
"""

from __future__ import annotations

from typing import Any

from services.safety_rules.domain.config_model import StudyConfig, TermMatch
from services.safety_rules.domain.memo import remember, table
from services.safety_rules.domain.model import Candidate, RuleContext
from services.safety_rules.domain.state import AeFacts
from shared.events.clinical import AdverseEventReported

AE_ANCHOR = "ae:"


def matches_term(ae: AdverseEventReported, term: TermMatch) -> bool:
    """The AE is this CTCAE term: same MedDRA code, or coded or verbatim term equal ignoring case."""
    if ae.meddra_code is not None and ae.meddra_code.strip() == term.meddra:
        return True
    wanted = term.term.casefold()
    return any(name is not None and name.strip().casefold() == wanted for name in (ae.decod, ae.term))


def _at_least(grade: int | None, minimum: int | None) -> bool:
    return minimum is None or (grade is not None and grade >= minimum)


def system_organ_class(config: StudyConfig, ae: AdverseEventReported) -> str | None:
    """AESOC, else the SOC of the MedDRA code, coded term or verbatim term in the CTCAE table."""
    if ae.soc:
        return ae.soc.strip()
    found = config.terminology.by_code_or_term(ae.meddra_code, ae.decod, ae.term)
    return None if found is None else found.soc


def _expected(config: StudyConfig, ae: AdverseEventReported, soc: str | None) -> bool:
    """Reference safety information (SAFETY_RULES §5): a listed SOC, MedDRA code or coded term."""
    listed = config.expected
    if (soc is not None and soc.casefold() in listed.soc_names) or ae.soc_code in listed.soc_codes:
        return True
    if ae.meddra_code is not None and ae.meddra_code.strip() in listed.codes:
        return True
    return ae.decod is not None and ae.decod.strip().casefold() in listed.terms


#: The AeFacts fields after `grade`, in their order: what classification derives from an AE's coded fields.
_Coding = tuple[str | None, tuple[str, ...], bool, bool, bool, bool, bool, bool, bool]


def _coding(config: StudyConfig, ae: AdverseEventReported) -> _Coding:
    rules = config.adverse_events
    soc = system_organ_class(config, ae)
    criteria = tuple(sorted(name for name, flag in ae.criteria.items() if flag))
    outcome = (ae.outcome or "").strip().casefold()
    fatal = "AESDTH" in criteria or outcome in rules.fatal_outcomes or ae.grade == rules.fatal_grade
    causality = " ".join((ae.causality or "").split()).casefold()
    infection = (soc is not None and soc.casefold() == rules.infection_soc) or ae.soc_code == rules.infection_soc_code
    serious = bool(criteria) or fatal
    related = causality in rules.related_causality
    anaphylaxis = any(matches_term(ae, t) and _at_least(ae.grade, t.min_grade) for t in rules.anaphylaxis)
    expected = _expected(config, ae, soc)
    return soc, criteria, infection, serious, fatal, "AESLIFE" in criteria, related, expected, anaphylaxis


def classify(config: StudyConfig, ae: AdverseEventReported) -> AeFacts:
    """The facts every AE rule reads, from the current version of the AE (the coding is remembered per
    distinct coded fields: AEs of a study repeat a few terms)."""
    coded_fields = (ae.soc, ae.soc_code, ae.meddra_code, ae.decod, ae.term, ae.grade, ae.outcome, ae.causality)
    key = (*coded_fields, *ae.criteria.items())
    memo = table(config, "ae-coding")
    coded: _Coding = memo.get(key) or remember(memo, key, _coding(config, ae))
    return AeFacts(ae.ae_id, ae.source, ae.occurred_at, ae.recorded_at, ae.decod or ae.term, ae.grade, *coded)


def may_raise(ae: AeFacts) -> bool:
    """Whether any AE family (AE-SI/AE-INF-2, AE-ANA, AE-SAE, SPONSOR-24H, IND-7D/15D) can raise a signal for
    these facts: each needs an infection, an anaphylaxis or a serious AE (`tests/safety_rules/test_ae_slots.py`
    holds every family to it). The engine evaluates the AE slots of an AE that cannot only where a signal
    stands, to retract it; most AEs are such (four in five evaluations saved per AE record)."""
    return ae.infection or ae.serious or ae.anaphylaxis


def ae_detail(ae: AeFacts) -> dict[str, Any]:
    """What an AE signal reports."""
    return {
        "ae_id": ae.ae_id,
        "term": ae.term,
        "soc": ae.soc,
        "grade": ae.grade,
        "serious": ae.serious,
        "criteria": list(ae.criteria),
        "fatal": ae.fatal,
        "related": ae.related,
        "expected": ae.expected,
    }


def ae_candidate(rule_id: str, ae: AeFacts, **clock: Any) -> Candidate:
    """A candidate signal for an AE; flags `fatal` / `related` qualify halting rules (§4)."""
    flags = frozenset(name for name, on in (("fatal", ae.fatal), ("related", ae.related)) if on)
    return Candidate(rule_id, (ae.source,), (AE_ANCHOR + ae.ae_id,), ae.onset, ae_detail(ae), flags, **clock)


def infection(ctx: RuleContext, ae_id: str) -> Candidate | None:
    """AE-SI: an infection AE (SOC Infections and infestations) that is serious or of grade >= the
    configured minimum; AE-INF-2: an infection AE of the configured grade, not serious (SAFETY_RULES §3)."""
    ae = ctx.participant.adverse_events.get(ae_id)
    if ae is None or not ae.infection:
        return None
    rules = ctx.config.adverse_events
    if ae.serious or _at_least(ae.grade, rules.serious_infection_min_grade):
        return ae_candidate("AE-SI", ae)
    if ae.grade == rules.infection_notify_grade:
        return ae_candidate("AE-INF-2", ae)
    return None


def anaphylaxis(ctx: RuleContext, ae_id: str) -> Candidate | None:
    """AE-ANA (SAFETY_RULES §3): anaphylaxis of any grade, or an allergic reaction of grade >= 3
    (terms and minimum grades configured)."""
    ae = ctx.participant.adverse_events.get(ae_id)
    return ae_candidate("AE-ANA", ae) if ae is not None and ae.anaphylaxis else None


def serious_adverse_event(ctx: RuleContext, ae_id: str) -> Candidate | None:
    """AE-SAE (SAFETY_RULES §3): any serious adverse event (any SAE criterion, or death)."""
    ae = ctx.participant.adverse_events.get(ae_id)
    return ae_candidate("AE-SAE", ae) if ae is not None and ae.serious else None
