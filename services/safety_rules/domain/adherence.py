"""ADH-EVAL: the participant can no longer be evaluable (SAFETY_RULES §3, §6; DOMAIN §1).

Evaluable needs 72 of 90 doses, so the configured number of missed doses (90 - 72 + 1 = 19) makes a
participant non-evaluable. Missed doses are counted as distinct dates with EXOCCUR = N.
"""

from __future__ import annotations

from services.safety_rules.domain.model import Candidate, RuleContext

ADHERENCE_ANCHOR = "participant"


def evaluability(ctx: RuleContext, anchor: str) -> Candidate | None:
    """ADH-EVAL (SAFETY_RULES §3): fires once, when the distinct missed-dose dates reach the limit."""
    limit = ctx.config.missed_doses_not_evaluable
    missed = ctx.participant.missed  # the earliest missed-dose record of each distinct date
    if len(missed) < limit:
        return None
    counted = [missed[day] for day in sorted(missed)[:limit]]
    evidence = tuple(dose.source for dose in counted)
    detail = {"missed_doses": len(missed), "limit": limit}
    return Candidate("ADH-EVAL", evidence, evidence, counted[-1].at, detail)
