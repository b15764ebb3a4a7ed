"""Upcasters: pure functions that turn an event of one schema version into the next version.

A consumer passes the JSON object it received (or read back from storage) through ``UPCASTERS.upcast``
before validating it, so handlers only ever see the current version of each family. A breaking change
to a family adds a new ``schema_version`` literal on its class and one registered step from the previous
version; ``check_complete`` (run by the contract tests) fails when a step is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from shared.events.clinical import (
    AdverseEventReported,
    DispositionRecorded,
    DoseRecorded,
    DsmbDecisionRecorded,
    InjectionSiteReported,
    LabResultRecorded,
    RegulatorySubmissionRecorded,
    VitalSignRecorded,
)
from shared.events.signal import AlertChanged

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class UpcastError(ValueError):
    """The event cannot be brought to the current version (unknown kind, missing step, from the future)."""


class UpcasterRegistry:
    def __init__(self, current_versions: Mapping[str, int]) -> None:
        self._current = dict(current_versions)
        self._steps: dict[tuple[str, int], Upcaster] = {}

    def register(self, kind: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Decorator: ``fn`` turns ``kind`` version ``from_version`` into ``from_version + 1``."""
        if kind not in self._current:
            raise UpcastError(f"unknown event kind {kind!r}")
        if not 1 <= from_version < self._current[kind]:
            raise UpcastError(f"{kind} v{from_version} is not below current v{self._current[kind]}")

        def add(fn: Upcaster) -> Upcaster:
            if (kind, from_version) in self._steps:
                raise UpcastError(f"two upcasters for {kind} v{from_version}")
            self._steps[kind, from_version] = fn
            return fn

        return add

    def upcast(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of ``raw`` at its family's current version (``raw`` itself is never modified)."""
        kind, version = raw.get("kind"), raw.get("schema_version")
        if not isinstance(kind, str) or kind not in self._current:
            raise UpcastError(f"unknown event kind {kind!r}")
        if not isinstance(version, int) or not 1 <= version <= self._current[kind]:
            raise UpcastError(f"{kind} has no schema version {version!r} (current {self._current[kind]})")
        data = dict(raw)
        while version < self._current[kind]:
            step = self._steps.get((kind, version))
            if step is None:
                raise UpcastError(f"no upcaster from {kind} v{version}")
            data = step(dict(data))
            version += 1
            if data.get("schema_version") != version:
                raise UpcastError(f"upcaster from {kind} v{version - 1} did not produce v{version}")
        return data

    def missing_steps(self) -> list[str]:
        """Every (kind, version) below current without a registered step; empty when complete."""
        return [
            f"{kind} v{version}"
            for kind, current in sorted(self._current.items())
            for version in range(1, current)
            if (kind, version) not in self._steps
        ]

    def check_complete(self) -> None:
        if missing := self.missing_steps():
            raise UpcastError(f"missing upcasters: {', '.join(missing)}")


def current_versions(families: Iterable[type[BaseModel]]) -> dict[str, int]:
    """``kind`` -> current ``schema_version``, read from each family's field defaults."""
    versions: dict[str, int] = {}
    for family in families:
        kind = family.model_fields["kind"].default
        version = family.model_fields["schema_version"].default
        versions[kind] = version
    return versions


#: Families whose JSON carries ``kind`` and ``schema_version`` (signals are versioned by their topic).
VERSIONED_FAMILIES: tuple[type[BaseModel], ...] = (
    LabResultRecorded,
    VitalSignRecorded,
    AdverseEventReported,
    InjectionSiteReported,
    DoseRecorded,
    DispositionRecorded,
    DsmbDecisionRecorded,
    RegulatorySubmissionRecorded,
    AlertChanged,
)

UPCASTERS = UpcasterRegistry(current_versions(VERSIONED_FAMILIES))
