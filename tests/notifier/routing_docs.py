"""Routing documents for the tests: the shipped ANAKINRA-AD routing, with test addresses and short windows."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from services.notifier.adapters.routing_file import parse_routing
from services.notifier.domain.routing_config import RoutingConfig
from shared.settings import REPO_ROOT

SHIPPED = REPO_ROOT / "studies" / "anakinra-ad.routing.yaml"
STUDY = "ANAKINRA-AD"


@cache
def _shipped() -> dict[str, Any]:
    data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def shipped_document() -> dict[str, Any]:
    return copy.deepcopy(_shipped())


def shipped_routing() -> RoutingConfig:
    return parse_routing(shipped_document(), str(SHIPPED))


def address(receiver: str, index: int = 0) -> str:
    return f"{receiver}-{index}@trial.test"


def routing_document(
    *,
    ack: str = "1h",
    digest_wait: str = "30m",
    link_ttl: str = "72h",
    reminders: tuple[str, ...] = ("12h", "2h"),
    webhook: str | None = None,
) -> dict[str, Any]:
    """The shipped tree with one address per receiver (``<name>-0@trial.test``) and the given timings;
    ``webhook`` adds a webhook channel to the safety officer and the admin."""
    data = shipped_document()
    for name, receiver in data["receivers"].items():
        receiver["email"] = [address(name)]
        if webhook and name in ("safety-officer", "admin"):
            receiver["webhook"] = [webhook]
    data["timing"] = {
        "digest_wait": digest_wait,
        "ack_window": {"NOTIFY": ack, "URGENT": ack, "HALT": ack},
        "ack_link_ttl": link_ttl,
        "clock_reminders": list(reminders),
    }
    return data


def write_document(data: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
