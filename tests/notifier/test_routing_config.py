"""Routing configuration on load: JSON Schema first (unknown key -> refuse), then cross-references."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from notifier.routing_docs import shipped_document, write_document
from services.notifier.adapters.routing_file import load_routing, parse_routing
from services.notifier.domain.routing_config import RoutingConfigError, parse_duration
from services.notifier.settings import NotifierSettings


def refused(document: dict[str, Any]) -> str:
    with pytest.raises(RoutingConfigError) as refusal:
        parse_routing(document, "test.routing.yaml")
    return str(refusal.value)


def test_the_shipped_configuration_loads_with_every_role_routed_somewhere() -> None:
    configs = load_routing(NotifierSettings(TRIALWATCH_HMAC_SECRET="x" * 32).routing_files)
    config = configs["ANAKINRA-AD"]
    roles = {receiver.role for receiver in config.receivers.values()}
    assert roles == {
        "safety_officer",
        "medical_monitor",
        "investigator",
        "dsmb_chair",
        "dmc_member",
        "sponsor_pv",
        "admin",
    }
    assert config.failure_receivers == ("admin",)


def test_an_unknown_top_level_key_refuses_to_load() -> None:
    document = shipped_document() | {"silences": []}
    assert "Additional properties are not allowed ('silences'" in refused(document)


def test_an_unknown_key_in_a_receiver_refuses_to_load() -> None:
    document = shipped_document()
    document["receivers"]["admin"]["pager"] = ["555"]
    assert "receivers/admin" in refused(document)


def test_an_unknown_matcher_label_refuses_to_load() -> None:
    document = shipped_document()
    document["route"]["routes"][0]["match"]["site"] = ["01"]
    assert "route/routes/0/match" in refused(document)


def test_an_unknown_role_refuses_to_load() -> None:
    document = shipped_document()
    document["receivers"]["admin"]["role"] = "superuser"
    assert "receivers/admin/role" in refused(document)


@pytest.mark.parametrize(
    ("where", "change"),
    [
        ("route.routes[1]", lambda d: d["route"]["routes"][1].update(receivers=["nobody"])),
        ("escalation.URGENT[0]", lambda d: d["escalation"].update(URGENT=[["nobody"]])),
        ("failures.notify", lambda d: d["failures"].update(notify=["nobody"])),
    ],
)
def test_a_receiver_no_one_defines_refuses_to_load(where: str, change: Any) -> None:
    document = shipped_document()
    change(document)
    message = refused(document)
    assert where in message and "'nobody'" in message


def test_a_malformed_duration_refuses_to_load() -> None:
    document = shipped_document()
    document["timing"]["ack_window"]["URGENT"] = "1 hour"
    assert "timing/ack_window/URGENT" in refused(document)


def test_durations() -> None:
    assert parse_duration("90s").total_seconds() == 90
    assert parse_duration("24h").total_seconds() == 86400
    assert parse_duration("7d").days == 7
    with pytest.raises(RoutingConfigError):
        parse_duration("1w")


def test_two_files_for_one_study_refuse_to_load(tmp_path: Path) -> None:
    first = write_document(shipped_document(), tmp_path / "a.routing.yaml")
    second = write_document(shipped_document(), tmp_path / "b.routing.yaml")
    with pytest.raises(RoutingConfigError, match="already routed"):
        load_routing([first, second])


def test_no_routing_file_refuses_to_start() -> None:
    with pytest.raises(RoutingConfigError, match="no routing configuration"):
        load_routing([])
