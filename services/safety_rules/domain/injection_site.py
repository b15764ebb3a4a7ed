"""AE-ISR-3: injection-site reaction of grade >= 3 (SAFETY_RULES §3; CTCAE "Injection site
reaction" 10022095, DOMAIN §4.1).

Diary reports (ISR) carry findings; without ISRTOXGR the grade is the highest grade any reported
finding gives in the configured table (ulceration or necrosis 3; pain, oedema, lipodystrophy 2;
tenderness, erythema, warmth, itching 1). An AE coded as an injection-site reaction counts with its
own grade.
"""

from __future__ import annotations

from services.safety_rules.domain.adverse_events import AE_ANCHOR, matches_term
from services.safety_rules.domain.config_model import StudyConfig
from services.safety_rules.domain.memo import remember, table
from services.safety_rules.domain.model import Candidate, RuleContext
from services.safety_rules.domain.state import InjectionSiteFacts
from shared.events.clinical import AdverseEventReported, InjectionSiteReported

DIARY_ANCHOR = "isr:"


def grade_from_findings(config: StudyConfig, findings: dict[str, bool]) -> int:
    """The highest grade of the configured finding table that a reported finding gives; 0 if none."""
    present = {name for name, flag in findings.items() if flag}
    for grade, names in config.adverse_events.injection_site_findings:
        if present & names:
            return grade
    return 0


def diary_facts(config: StudyConfig, report: InjectionSiteReported) -> InjectionSiteFacts:
    """An ISR diary report: ISRTOXGR when sent (it overrides), else the grade of its findings (remembered per
    distinct findings)."""
    key = (report.grade, *report.findings.items())
    memo = table(config, "isr-grade")
    graded: tuple[int, tuple[str, ...]] | None = memo.get(key)
    if graded is None:
        findings = tuple(sorted(name for name, flag in report.findings.items() if flag))
        grade = report.grade if report.grade is not None else grade_from_findings(config, report.findings)
        graded = remember(memo, key, (grade, findings))
    return InjectionSiteFacts(
        anchor=DIARY_ANCHOR + report.source,
        source=report.source,
        at=report.occurred_at,
        grade=graded[0],
        from_findings=report.grade is None,
        findings=graded[1],
    )


def ae_facts(config: StudyConfig, ae: AdverseEventReported) -> InjectionSiteFacts | None:
    """An AE coded as an injection-site reaction, with the grade it was reported with."""
    key = (ae.meddra_code, ae.decod, ae.term)
    memo = table(config, "isr-term")
    matched: bool | None = memo.get(key)
    if matched is None:
        terms = config.adverse_events.injection_site_terms
        matched = remember(memo, key, any(matches_term(ae, term) for term in terms))
    if not matched:
        return None
    return InjectionSiteFacts(AE_ANCHOR + ae.ae_id, ae.source, ae.occurred_at, ae.grade, False, ())


def injection_site_reaction(ctx: RuleContext, anchor: str) -> Candidate | None:
    """AE-ISR-3 (SAFETY_RULES §3): an injection-site reaction of grade >= the configured minimum."""
    reaction = ctx.participant.injection_sites.get(anchor)
    minimum = ctx.config.adverse_events.injection_site_min_grade
    if reaction is None or reaction.grade is None or reaction.grade < minimum:
        return None
    detail = {
        "grade": reaction.grade,
        "graded_from_findings": reaction.from_findings,
        "findings": list(reaction.findings),
        "scale": ctx.config.scale.scale,
        "version": ctx.config.scale.version,
    }
    return Candidate("AE-ISR-3", (reaction.source,), (anchor,), reaction.at, detail)
