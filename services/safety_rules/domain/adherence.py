"""ADH-EVAL: the participant can no longer be evaluable (SAFETY_RULES §3, §6; DOMAIN §1).

Evaluable needs 72 of 90 doses, so the configured number of missed doses (90 - 72 + 1 = 19) makes a
participant non-evaluable. Missed doses are counted as distinct dates with EXOCCUR = N.
"""

from __future__ import annotations

from datetime import date

from services.safety_rules.domain.model import Candidate, RuleContext
from services.safety_rules.domain.state import DoseFact, utc_date

ADHERENCE_ANCHOR = "participant"


def missed_dates(doses: dict[str, DoseFact]) -> dict[date, DoseFact]:
    """The earliest missed-dose record of each distinct date."""
    missed: dict[date, DoseFact] = {}
    for dose in sorted(doses.values(), key=lambda d: (d.at, d.source)):
        if not dose.given:
            missed.setdefault(utc_date(dose.at), dose)
    return missed


def evaluability(ctx: RuleContext, anchor: str) -> Candidate | None:
    """ADH-EVAL (SAFETY_RULES §3): fires once, when the distinct missed-dose dates reach the limit."""
    limit = ctx.config.missed_doses_not_evaluable
    missed = missed_dates(ctx.participant.doses)
    if len(missed) < limit:
        return None
    counted = [missed[day] for day in sorted(missed)[:limit]]
    evidence = tuple(dose.source for dose in counted)
    detail = {"missed_doses": len(missed), "limit": limit}
    return Candidate("ADH-EVAL", evidence, evidence, counted[-1].at, detail)
