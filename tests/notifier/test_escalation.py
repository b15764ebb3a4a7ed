"""Escalation tiers and who may act, from routing configuration."""

from __future__ import annotations

from notifier.routing_docs import shipped_document, shipped_routing
from services.notifier.adapters.routing_file import parse_routing
from services.notifier.domain.acknowledgement import ack_roles, ack_window, acting_role, escalation_receivers

CONFIG = shipped_routing()
URGENT_ROUTED = ("safety-officer", "medical-monitor", "investigator")


def test_each_escalation_step_renotifies_and_adds_the_next_tier() -> None:
    assert escalation_receivers(CONFIG, "URGENT", URGENT_ROUTED, 1) == URGENT_ROUTED
    assert escalation_receivers(CONFIG, "URGENT", URGENT_ROUTED, 2) == (*URGENT_ROUTED, "dsmb-chair", "sponsor-pv")


def test_there_is_no_step_past_the_last_tier() -> None:
    assert escalation_receivers(CONFIG, "URGENT", URGENT_ROUTED, 3) is None
    assert escalation_receivers(CONFIG, "NOTIFY", ("investigator",), 2) is None


def test_notify_escalates_to_the_medical_monitor() -> None:
    assert escalation_receivers(CONFIG, "NOTIFY", ("investigator",), 1) == ("investigator", "medical-monitor")


def test_without_tiers_the_single_step_renotifies_the_routed_receivers() -> None:
    document = shipped_document()
    del document["escalation"]
    config = parse_routing(document, "test")
    assert escalation_receivers(config, "URGENT", URGENT_ROUTED, 1) == URGENT_ROUTED
    assert escalation_receivers(config, "URGENT", URGENT_ROUTED, 2) is None


def test_escalated_tiers_gain_the_right_to_acknowledge() -> None:
    assert "sponsor_pv" in ack_roles(CONFIG, "URGENT", escalation_receivers(CONFIG, "URGENT", URGENT_ROUTED, 2) or ())


def test_windows_come_from_configuration() -> None:
    assert ack_window(CONFIG, "URGENT") is not None and ack_window(CONFIG, "INFO") is None


def test_a_role_outside_the_allowed_set_cannot_act() -> None:
    assert acting_role({"dmc_member"}, ["safety_officer", "dsmb_chair"]) is None
    assert acting_role({"dmc_member", "dsmb_chair"}, ["safety_officer", "dsmb_chair"]) == "dsmb_chair"
