"""The shipped ANAKINRA-AD routing tree, case by case: receivers, dispatch, acknowledgers, reasons."""

from __future__ import annotations

import pytest

from notifier.routing_docs import shipped_document, shipped_routing
from services.notifier.adapters.routing_file import parse_routing
from services.notifier.domain.model import SignalFacts
from services.notifier.domain.routing import decide, route
from shared.events.signal import Action, Severity

CONFIG = shipped_routing()


def facts(rule_id: str, severity: Severity, subject: str | None = "AD-003", action: Action = "NONE") -> SignalFacts:
    return SignalFacts("ANAKINRA-AD", subject, rule_id, severity, action, "RAISED")


@pytest.mark.parametrize(
    ("rule_id", "severity", "subject", "action", "expected"),
    [
        ("LAB-ANC-1", "INFO", "AD-001", "NONE", (("safety-officer",), "store")),
        ("LAB-ANC-2", "NOTIFY", "AD-001", "REPEAT_LAB", (("safety-officer", "investigator"), "digest")),
        ("LAB-DQ", "NOTIFY", "AD-001", "DATA_QUERY", (("investigator",), "digest")),
        (
            "LAB-ANC-3",
            "URGENT",
            "AD-003",
            "HOLD_DOSE",
            (("safety-officer", "medical-monitor", "investigator"), "immediate"),
        ),
        ("AE-SAE", "URGENT", "AD-004", "NONE", (("safety-officer", "medical-monitor", "investigator"), "immediate")),
        ("SPONSOR-24H", "URGENT", "AD-004", "NONE", (("safety-officer", "sponsor-pv", "investigator"), "immediate")),
        ("IND-7D", "URGENT", "AD-004", "NONE", (("safety-officer", "sponsor-pv", "investigator"), "immediate")),
        ("CLOCK-BREACH", "URGENT", "AD-004", "NONE", (("safety-officer", "sponsor-pv", "investigator"), "immediate")),
        (
            "H-NEUT",
            "HALT",
            None,
            "PAUSE_STUDY",
            (("safety-officer", "medical-monitor", "dsmb-chair", "dmc-members", "sponsor-pv"), "immediate"),
        ),
    ],
)
def test_shipped_routing_table(
    rule_id: str, severity: Severity, subject: str | None, action: Action, expected: tuple[tuple[str, ...], str]
) -> None:
    receivers, mode = expected
    decision = decide(CONFIG, facts(rule_id, severity, subject, action), [])
    assert decision.receivers == receivers
    assert decision.mode == mode
    assert any(f"dispatches as {mode!r}" in reason for reason in decision.reasons)


def test_urgent_is_acknowledged_by_routed_roles_within_one_hour() -> None:
    decision = decide(CONFIG, facts("LAB-ANC-3", "URGENT", action="HOLD_DOSE"), [])
    assert decision.ack_roles == {"safety_officer", "medical_monitor", "investigator"}
    assert decision.ack_window is not None and decision.ack_window.total_seconds() == 3600


def test_halt_adds_the_dsmb_chair_and_never_the_read_only_dmc_member() -> None:
    decision = decide(CONFIG, facts("H-SI", "HALT", None, "PAUSE_STUDY"), [])
    assert "dsmb_chair" in decision.ack_roles and "safety_officer" in decision.ack_roles
    assert "dmc_member" not in decision.ack_roles
    assert decision.opens_pause


def test_notify_has_a_24_hour_window_and_the_safety_officer_even_when_not_routed() -> None:
    decision = decide(CONFIG, facts("LAB-DQ", "NOTIFY", action="DATA_QUERY"), [])
    assert decision.ack_window is not None and decision.ack_window.total_seconds() == 24 * 3600
    assert decision.ack_roles == {"investigator", "safety_officer"}


def test_info_is_stored_and_needs_no_acknowledgement() -> None:
    decision = decide(CONFIG, facts("LAB-ANC-1", "INFO"), [])
    assert decision.mode == "store" and decision.ack_window is None and not decision.ack_roles


def test_a_retraction_is_routed_like_its_rule_and_marked_as_a_retraction() -> None:
    raised = facts("LAB-ANC-3", "URGENT", action="HOLD_DOSE")
    retracted = SignalFacts(raised.study_id, raised.subject_id, raised.rule_id, "URGENT", "HOLD_DOSE", "RETRACTED")
    decision = decide(CONFIG, retracted, [])
    assert decision.mode == "retraction"
    assert decision.receivers == route(CONFIG, raised)[0]


def test_clock_rules_are_clocks_and_a_breach_is_not() -> None:
    assert decide(CONFIG, facts("IND-15D", "URGENT"), []).clock
    assert not decide(CONFIG, facts("CLOCK-BREACH", "URGENT"), []).clock


def _tree(routes: list[dict[str, object]]) -> dict[str, object]:
    document = shipped_document()
    document["route"] = {"receivers": ["safety-officer"], "routes": routes}
    return document


def test_continue_lets_later_siblings_add_receivers() -> None:
    config = parse_routing(
        _tree(
            [
                {"match": {"rule_id": ["H-*"]}, "receivers": ["dsmb-chair"], "continue": True},
                {"match": {"severity": ["HALT"]}, "receivers": ["sponsor-pv"]},
                {"match": {"severity": ["HALT"]}, "receivers": ["investigator"]},
            ]
        ),
        "test",
    )
    receivers, reasons = route(config, facts("H-DEATH", "HALT", None, "PAUSE_STUDY"))
    assert receivers == ("dsmb-chair", "sponsor-pv")
    assert len(reasons) == 2 and "route.routes[0]" in reasons[0] and "route.routes[1]" in reasons[1]


def test_nested_routes_inherit_receivers_and_unmatched_signals_fall_back_to_the_parent() -> None:
    config = parse_routing(
        _tree(
            [
                {
                    "match": {"severity": ["URGENT"]},
                    "receivers": ["medical-monitor"],
                    "routes": [{"match": {"level": ["participant"], "rule_id": ["LAB-*"]}}],
                }
            ]
        ),
        "test",
    )
    assert route(config, facts("LAB-PLT-4", "URGENT"))[0] == ("medical-monitor",)
    assert route(config, facts("AE-ANA", "URGENT"))[0] == ("medical-monitor",)
    assert route(config, facts("LAB-ANC-2", "NOTIFY"))[0] == ("safety-officer",)
