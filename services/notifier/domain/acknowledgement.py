"""Who may acknowledge, resolve and submit, and who an unacknowledged alert escalates to.

Default acknowledgers: the roles the alert was routed to, plus ``acknowledge.also`` (safety_officer) and
the severity's extra roles (HALT: dsmb_chair); read-only roles (dmc_member) never acknowledge.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from services.notifier.domain.model import Role
from services.notifier.domain.routing_config import RoutingConfig
from shared.events.signal import Severity


def roles_of(config: RoutingConfig, receivers: Iterable[str]) -> frozenset[Role]:
    return frozenset(config.receivers[name].role for name in receivers)


def ack_roles(config: RoutingConfig, severity: Severity, receivers: Iterable[str]) -> frozenset[Role]:
    extra = config.ack.by_severity.get(severity, frozenset())
    return (roles_of(config, receivers) | config.ack.also | extra) - config.ack.read_only


def acting_role(held: Iterable[Role], allowed: Iterable[str]) -> Role | None:
    """The role under which a holder of ``held`` may act, or None (first allowed role, sorted)."""
    permitted = set(allowed)
    usable = sorted(role for role in held if role in permitted)
    return usable[0] if usable else None


def ack_window(config: RoutingConfig, severity: Severity) -> timedelta | None:
    """SAFETY_RULES §1 windows from configuration; None when the severity needs no acknowledgement."""
    if config.dispatch.get(severity, "store") == "store":
        return None
    return config.timing.ack_window.get(severity)


def escalation_receivers(
    config: RoutingConfig, severity: Severity, routed: Iterable[str], step: int
) -> tuple[str, ...] | None:
    """Escalation ``step`` (1-based) re-notifies the routed receivers and adds tiers 1..step; None past the
    last tier. Without tiers there is one step: a re-notification of the routed receivers."""
    tiers = config.escalation.get(severity, ())
    if step < 1 or step > max(1, len(tiers)):
        return None
    names = list(dict.fromkeys(routed))
    for tier in tiers[:step]:
        names += [name for name in tier if name not in names]
    return tuple(names)
