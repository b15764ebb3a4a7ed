"""What the default scenario must produce, written by hand from SAFETY_RULES.md and scenarios/default.yaml
(never computed by the code under test). Shared by the offline test and the live one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Signal = dict[str, Any]

#: (rule_id, subject) of every RAISED signal the default scenario's inputs qualify for, CLOCK-BREACH aside.
RAISED = sorted(
    [
        ("AE-INF-2", "AD-001"),  # §3: URI grade 2, not serious
        ("LAB-ANC-3", "AD-003"),  # §2: ANC 0.8 at week 2 (0.5 <= ANC < 1.0)
        ("LAB-ANC-2", "AD-003"),  # §2: repeat ANC 1.3 (1.0 <= ANC < 1.5); the re-sent 0.8 fires nothing (§1)
        ("LAB-PLT-3", "AD-007"),  # §2: platelets 42 (25 <= PLT < 50), later corrected to 242
        ("AE-SI", "AD-002"),  # §3: lung infection grade 3, serious
        ("AE-SAE", "AD-002"),  # §3: AESER / FHIR seriousness serious
        ("SPONSOR-24H", "AD-002"),  # §5: any SAE
        ("AE-SAE", "AD-006"),  # §3: Stevens-Johnson syndrome, serious
        ("SPONSOR-24H", "AD-006"),  # §5
        ("IND-7D", "AD-006"),  # §5: serious, probably related, not in the expected list, life-threatening
        ("AE-SI", "AD-005"),  # §3: skin infection grade 3, serious
        ("H-SI", None),  # §4: the 2nd participant with AE-SI after the first dose
        ("AE-SAE", "AD-005"),  # §3
        ("SPONSOR-24H", "AD-005"),  # §5
    ]
)
#: §4 example: "0.922 for 2 of 8", boundary 2 at every n <= 8.
H_SI_DETAIL = {"count": 2, "n": 8, "boundary": 2}
H_SI_POSTERIOR = 0.922
#: The malformed lab message (no PID-3) is the one rejected record (INTERFACES §2).
REJECTED = 1


def raised(signals: Sequence[Signal]) -> list[tuple[str, str | None]]:
    return sorted(
        (
            (s["rule_id"], s["subject_id"])
            for s in signals
            if s["status"] == "RAISED" and s["rule_id"] != "CLOCK-BREACH"
        ),
        key=lambda pair: (pair[0], pair[1] or ""),
    )


def expected_raised() -> list[tuple[str, str | None]]:
    return sorted(RAISED, key=lambda pair: (pair[0], pair[1] or ""))


def check_charter_outcomes(signals: Sequence[Signal]) -> None:
    """The hand-written outcomes: every expected signal once, nothing else; H-SI's statistic; the retraction."""
    assert raised(signals) == expected_raised()
    [h_si] = [s for s in signals if s["rule_id"] == "H-SI"]
    assert {key: h_si["detail"][key] for key in H_SI_DETAIL} == H_SI_DETAIL
    assert abs(h_si["detail"]["posterior"] - H_SI_POSTERIOR) < 0.0005
    assert h_si["subject_id"] is None and h_si["severity"] == "HALT"
    [plt] = [s for s in signals if s["rule_id"] == "LAB-PLT-3" and s["status"] == "RAISED"]
    [retraction] = [s for s in signals if s["status"] == "RETRACTED"]
    assert retraction["retracts"] == plt["signal_id"] and retraction["subject_id"] == "AD-007"
    [ind] = [s for s in signals if s["rule_id"] in ("IND-7D", "IND-15D")]
    assert ind["rule_id"] == "IND-7D" and ind["due_at"] > ind["observed_at"]
