"""The rule registry: every SAFETY_RULES rule id and the function that decides it.

Participant-level rules are grouped in families: one function decides, for one slot (a result, an
AE, a diary report, the participant), which rule of its family should stand there. Adding a rule
touches its function, one line here, its configuration and its table-driven test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from services.safety_rules.domain import adherence, adverse_events, clocks, composite, halting, injection_site, lab
from services.safety_rules.domain.model import SlotRule


@dataclass(frozen=True, slots=True)
class RuleFamily:
    """A slot family: its name (part of persisted slot keys), its rule ids and its function."""

    name: str
    rule_ids: tuple[str, ...]
    evaluate: SlotRule


GRADE = RuleFamily(
    "lab-grade",
    (
        "LAB-ANC-1",
        "LAB-ANC-2",
        "LAB-ANC-3",
        "LAB-ANC-4",
        "LAB-PLT-3",
        "LAB-PLT-4",
        "LAB-HGB-3",
        "LAB-LFT-3",
        "LAB-LFT-4",
        "LAB-CREAT-2",
    ),
    lab.graded_result,
)
DATA_QUALITY = RuleFamily("lab-dq", ("LAB-DQ",), lab.data_quality)
FEBRILE_NEUTROPENIA = RuleFamily("lab-fn", ("LAB-FN",), composite.febrile_neutropenia)
HYS_LAW = RuleFamily("lab-hys", ("LAB-HYS",), composite.hys_law)
INFECTION = RuleFamily("ae-infection", ("AE-SI", "AE-INF-2"), adverse_events.infection)
ANAPHYLAXIS = RuleFamily("ae-ana", ("AE-ANA",), adverse_events.anaphylaxis)
INJECTION_SITE = RuleFamily("ae-isr", ("AE-ISR-3",), injection_site.injection_site_reaction)
SERIOUS = RuleFamily("ae-sae", ("AE-SAE",), adverse_events.serious_adverse_event)
EVALUABILITY = RuleFamily("adh-eval", ("ADH-EVAL",), adherence.evaluability)
SPONSOR_CLOCK = RuleFamily("clock-sponsor", ("SPONSOR-24H",), clocks.sponsor_clock)
IND_CLOCK = RuleFamily("clock-ind", ("IND-7D", "IND-15D"), clocks.ind_clock)

CLOCK_RULE_IDS = frozenset((*SPONSOR_CLOCK.rule_ids, *IND_CLOCK.rule_ids))
LAB_FAMILIES = (GRADE, DATA_QUALITY, FEBRILE_NEUTROPENIA, HYS_LAW)
AE_FAMILIES = (INFECTION, ANAPHYLAXIS, SERIOUS, SPONSOR_CLOCK, IND_CLOCK)
FAMILIES: Mapping[str, RuleFamily] = {
    family.name: family for family in (*LAB_FAMILIES, *AE_FAMILIES, INJECTION_SITE, EVALUABILITY)
}

#: Participant-level rule id -> the function that decides it.
PARTICIPANT_RULES: Mapping[str, SlotRule] = {
    rule_id: family.evaluate for family in FAMILIES.values() for rule_id in family.rule_ids
}
PARTICIPANT_RULE_IDS = frozenset(PARTICIPANT_RULES)

#: Study-level rules (SAFETY_RULES §4) and the clock breach (§5) -> the function that decides them.
STUDY_RULES: Mapping[str, Callable[..., Any]] = {
    "H-DEATH": halting.count_participant,
    "H-ANA": halting.count_participant,
    "H-SI": halting.count_participant,
    "H-NEUT": halting.count_participant,
    "H-RSAE": halting.count_participant,
    clocks.BREACH: clocks.breach_signal,
}
STUDY_RULE_IDS = frozenset(STUDY_RULES)

RULE_IDS = PARTICIPANT_RULE_IDS | STUDY_RULE_IDS
