"""`adverse_events.may_raise` is true of every AE for which some AE family can raise a signal.

The engine skips the AE-family slots of an AE that cannot raise (unless a signal stands there), so each
family function must return None whenever `may_raise` is false: checked here over every combination of
the classified facts and grades, with the study's configuration (SAFETY_RULES §3, §5).
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import product

from services.safety_rules.domain import packaged_study
from services.safety_rules.domain.adverse_events import may_raise
from services.safety_rules.domain.model import RuleContext
from services.safety_rules.domain.registry import AE_FAMILIES
from services.safety_rules.domain.state import AeFacts, ParticipantState

ONSET = datetime(2026, 3, 10, tzinfo=UTC)


def _facts(grade: int | None, flags: tuple[bool, ...]) -> AeFacts:
    infection, serious, fatal, life_threatening, related, expected, anaphylaxis = flags
    criteria = ("AESER",) if serious else ()
    return AeFacts(
        "AE-1", "REC:ANAKINRA-AD:AE:AE-1", ONSET, ONSET, "term", grade, "soc", criteria,
        infection, serious, fatal, life_threatening, related, expected, anaphylaxis,
    )  # fmt: skip


def test_no_ae_family_raises_for_an_ae_that_may_not() -> None:
    config = packaged_study()
    checked = raised = 0
    for grade, flags in product([None, 1, 2, 3, 4, 5], product([False, True], repeat=7)):
        facts = _facts(grade, flags)
        participant = ParticipantState("AD-001")
        participant.adverse_events[facts.ae_id] = facts
        context = RuleContext(config, participant)
        candidates = [family.evaluate(context, facts.ae_id) for family in AE_FAMILIES]
        if not may_raise(facts):
            checked += 1
            assert candidates == [None] * len(AE_FAMILIES), facts
        raised += any(candidate is not None for candidate in candidates)
    assert checked == 6 * 2**4  # infection, serious and anaphylaxis false; the four other flags free
    assert raised > 0  # the families do raise for AEs that may


def test_a_grade_3_infection_and_a_serious_ae_may_raise_a_grade_1_nausea_may_not() -> None:
    assert may_raise(_facts(3, (True, False, False, False, False, False, False)))
    assert may_raise(_facts(1, (False, True, False, False, False, False, False)))
    assert not may_raise(_facts(1, (False, False, False, False, True, True, False)))
