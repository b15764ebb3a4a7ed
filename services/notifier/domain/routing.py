"""The routing decision for one signal: to whom, how fast, who acknowledges, and why (every reason named).

The tree is walked as Alertmanager walks it: a signal descends into the first child whose matcher holds
(and into later siblings too when that child says ``continue``); where no child matches, the node itself
routes it. A child without receivers inherits its parent's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from services.notifier.domain.acknowledgement import ack_roles, ack_window
from services.notifier.domain.inhibition import PauseEvent, inhibitor, opens_pause
from services.notifier.domain.model import Role, SignalFacts
from services.notifier.domain.routing_config import Route, RoutingConfig

Mode = Literal["store", "digest", "immediate", "inhibited", "retraction"]


@dataclass(frozen=True)
class Decision:
    mode: Mode
    receivers: tuple[str, ...]
    ack_roles: frozenset[Role]
    ack_window: timedelta | None
    reasons: tuple[str, ...]
    inhibited_by: PauseEvent | None = None
    opens_pause: bool = False
    clock: bool = False


def _leaves(route: Route, facts: SignalFacts) -> list[Route]:
    matched: list[Route] = []
    for child in route.routes:
        if not child.matcher.matches(facts):
            continue
        matched += _leaves(child, facts)
        if not child.carry_on:
            break
    return matched or [route]


def route(config: RoutingConfig, facts: SignalFacts) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(receivers, reasons): the union of the matching leaves' receivers, in configuration order."""
    leaves = _leaves(config.route, facts)
    receivers = tuple(dict.fromkeys(name for leaf in leaves for name in leaf.receivers))
    reasons = tuple(f"{leaf.path} matched ({leaf.matcher.describe()}) -> {list(leaf.receivers)}" for leaf in leaves)
    return receivers, reasons


def decide(config: RoutingConfig, facts: SignalFacts, pauses: Sequence[PauseEvent]) -> Decision:
    receivers, reasons = route(config, facts)
    dispatch = config.dispatch.get(facts.severity, "store")
    roles = ack_roles(config, facts.severity, receivers)
    window = ack_window(config, facts.severity)
    clock = facts.rule_id in config.clocks
    if facts.status == "RETRACTED":
        why = "retraction: the receivers of the original alert are told, if it was sent"
        return Decision("retraction", receivers, frozenset(), None, (*reasons, why))
    why = f"severity {facts.severity} dispatches as {dispatch!r}"
    pause = inhibitor(config, facts, pauses) if dispatch != "store" else None
    if pause is not None:
        folded = f"inhibited: study {facts.study_id} paused by {pause.rule_id} (signal {pause.source_id})"
        return Decision("inhibited", receivers, roles, None, (*reasons, why, folded), inhibited_by=pause)
    return Decision(
        dispatch,
        receivers,
        roles if window else frozenset(),
        window,
        (*reasons, why),
        opens_pause=opens_pause(config, facts),
        clock=clock,
    )
