"""The routing configuration of one study, typed (the YAML beside the study file, ``*.routing.yaml``).

``build_routing`` takes a document that already passed ``routing.schema.json`` and checks what a schema
cannot: every receiver a route, an escalation tier or the failure list names must exist.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from fnmatch import fnmatchcase
from typing import Any, cast

from services.notifier.domain.model import Channel, Dispatch, Receiver, Role, SignalFacts
from shared.events.signal import Severity

_DURATION = re.compile(r"^(\d+)(s|m|h|d)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


class RoutingConfigError(ValueError):
    """The routing configuration cannot be used; the message names the offending key."""


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``24h``, ``7d``."""
    found = _DURATION.match(text)
    if found is None:
        raise RoutingConfigError(f"not a duration (e.g. 30m, 24h): {text!r}")
    return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})


@dataclass(frozen=True)
class Matcher:
    """Label -> glob patterns; matches when every listed label matches one of its patterns."""

    labels: tuple[tuple[str, tuple[str, ...]], ...]

    def matches(self, facts: SignalFacts) -> bool:
        return all(any(fnmatchcase(facts.label(name), p) for p in patterns) for name, patterns in self.labels)

    def describe(self) -> str:
        return ", ".join(f"{name} in {list(patterns)}" for name, patterns in self.labels) or "everything"


@dataclass(frozen=True)
class Route:
    path: str
    matcher: Matcher
    receivers: tuple[str, ...]
    carry_on: bool
    routes: tuple[Route, ...]


@dataclass(frozen=True)
class Timing:
    digest_wait: timedelta
    ack_window: Mapping[Severity, timedelta]
    ack_link_ttl: timedelta
    clock_reminders: tuple[timedelta, ...]


@dataclass(frozen=True)
class InhibitRule:
    """While a pause opened by a ``source`` signal lasts, ``target`` signals fold into it."""

    source: Matcher
    target: Matcher


@dataclass(frozen=True)
class AckPolicy:
    also: frozenset[Role]
    by_severity: Mapping[Severity, frozenset[Role]]
    read_only: frozenset[Role]
    resolve: frozenset[Role]
    submit: frozenset[Role]


@dataclass(frozen=True)
class RoutingConfig:
    study_id: str
    config_version: str
    receivers: Mapping[str, Receiver]
    dispatch: Mapping[Severity, Dispatch]
    timing: Timing
    route: Route
    inhibit: tuple[InhibitRule, ...]
    ack: AckPolicy
    escalation: Mapping[Severity, tuple[tuple[str, ...], ...]]
    clocks: frozenset[str]
    failure_receivers: tuple[str, ...]


def _matcher(data: Mapping[str, Sequence[str]] | None) -> Matcher:
    return Matcher(tuple((name, tuple(patterns)) for name, patterns in sorted((data or {}).items())))


def _route(data: Mapping[str, Any], path: str, inherited: tuple[str, ...]) -> Route:
    receivers = tuple(data.get("receivers", inherited))
    children = data.get("routes", [])
    return Route(
        path=path,
        matcher=_matcher(data.get("match")),
        receivers=receivers,
        carry_on=bool(data.get("continue", False)),
        routes=tuple(_route(child, f"{path}.routes[{i}]", receivers) for i, child in enumerate(children)),
    )


def _receiver(name: str, data: Mapping[str, Any]) -> Receiver:
    emails = [Channel("email", address) for address in data.get("email", [])]
    hooks = [Channel("webhook", url) for url in data.get("webhook", [])]
    return Receiver(name, cast(Role, data["role"]), tuple(emails + hooks))


def _roles(names: Iterable[str]) -> frozenset[Role]:
    return frozenset(cast(Role, name) for name in names)


def _ack(data: Mapping[str, Any]) -> AckPolicy:
    by_severity = {cast(Severity, sev): _roles(roles) for sev, roles in data.get("by_severity", {}).items()}
    return AckPolicy(
        also=_roles(data.get("also", [])),
        by_severity=by_severity,
        read_only=_roles(data.get("read_only", [])),
        resolve=_roles(data.get("resolve", [])),
        submit=_roles(data.get("submit", [])),
    )


def _timing(data: Mapping[str, Any]) -> Timing:
    return Timing(
        digest_wait=parse_duration(data["digest_wait"]),
        ack_window={cast(Severity, sev): parse_duration(text) for sev, text in data["ack_window"].items()},
        ack_link_ttl=parse_duration(data["ack_link_ttl"]),
        clock_reminders=tuple(sorted((parse_duration(t) for t in data.get("clock_reminders", [])), reverse=True)),
    )


def _named_receivers(route: Route) -> Iterable[tuple[str, str]]:
    yield from ((route.path, name) for name in route.receivers)
    for child in route.routes:
        yield from _named_receivers(child)


def _check_references(config: RoutingConfig) -> None:
    named = list(_named_receivers(config.route))
    for severity, tiers in config.escalation.items():
        named += [(f"escalation.{severity}[{i}]", name) for i, tier in enumerate(tiers) for name in tier]
    named += [("failures.notify", name) for name in config.failure_receivers]
    for where, name in named:
        if name not in config.receivers:
            raise RoutingConfigError(f"{where} names receiver {name!r}, which receivers does not define")


def build_routing(data: Mapping[str, Any]) -> RoutingConfig:
    """The typed configuration of a schema-valid document; RoutingConfigError on a dangling name."""
    escalation = data.get("escalation", {})
    config = RoutingConfig(
        study_id=data["study_id"],
        config_version=data["config_version"],
        receivers={name: _receiver(name, spec) for name, spec in data["receivers"].items()},
        dispatch={cast(Severity, sev): cast(Dispatch, how) for sev, how in data["dispatch"].items()},
        timing=_timing(data["timing"]),
        route=_route(data["route"], "route", ()),
        inhibit=tuple(InhibitRule(_matcher(r["source"]), _matcher(r["target"])) for r in data.get("inhibit", [])),
        ack=_ack(data.get("acknowledge", {})),
        escalation={cast(Severity, sev): tuple(tuple(tier) for tier in tiers) for sev, tiers in escalation.items()},
        clocks=frozenset(data.get("clocks", [])),
        failure_receivers=tuple(data.get("failures", {}).get("notify", [])),
    )
    _check_references(config)
    if not config.route.receivers:
        raise RoutingConfigError("route: the root route needs receivers (the fallback of every signal)")
    return config
