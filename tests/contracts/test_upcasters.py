"""The upcaster registry: old versions reach the current one step by step, gaps are caught early."""

from __future__ import annotations

from typing import Any

import pytest

from shared.events.upcasters import UPCASTERS, UpcasterRegistry, UpcastError


def registry_at_v3() -> UpcasterRegistry:
    registry = UpcasterRegistry({"lab.result": 3})

    @registry.register("lab.result", from_version=1)
    def rename_units(event: dict[str, Any]) -> dict[str, Any]:
        event["unit"] = event.pop("units")
        return {**event, "schema_version": 2}

    @registry.register("lab.result", from_version=2)
    def add_derived(event: dict[str, Any]) -> dict[str, Any]:
        return {**event, "derived": False, "schema_version": 3}

    return registry


def test_a_v1_event_is_upcast_through_every_step_to_the_current_version() -> None:
    upcast = registry_at_v3().upcast({"kind": "lab.result", "schema_version": 1, "units": "g/L"})
    assert upcast == {"kind": "lab.result", "schema_version": 3, "unit": "g/L", "derived": False}


def test_upcasting_leaves_the_original_untouched() -> None:
    original = {"kind": "lab.result", "schema_version": 1, "units": "g/L"}
    registry_at_v3().upcast(original)
    assert original == {"kind": "lab.result", "schema_version": 1, "units": "g/L"}


def test_a_current_version_event_is_returned_unchanged() -> None:
    event = {"kind": "lab.result", "schema_version": 3, "unit": "g/L"}
    assert registry_at_v3().upcast(event) == event


@pytest.mark.parametrize(
    "event",
    [
        {"kind": "lab.result", "schema_version": 4},
        {"kind": "lab.result", "schema_version": 0},
        {"kind": "lab.result", "schema_version": "1"},
        {"kind": "no.such.kind", "schema_version": 1},
        {"schema_version": 1},
    ],
)
def test_unknown_kinds_and_versions_are_refused(event: dict[str, Any]) -> None:
    with pytest.raises(UpcastError):
        registry_at_v3().upcast(event)


def test_a_missing_step_is_reported_by_name() -> None:
    registry = UpcasterRegistry({"dose": 3})
    registry.register("dose", from_version=2)(lambda event: {**event, "schema_version": 3})
    assert registry.missing_steps() == ["dose v1"]
    with pytest.raises(UpcastError, match="no upcaster from dose v1"):
        registry.upcast({"kind": "dose", "schema_version": 1})


def test_a_step_that_forgets_to_bump_the_version_is_refused() -> None:
    registry = UpcasterRegistry({"dose": 2})
    registry.register("dose", from_version=1)(lambda event: event)
    with pytest.raises(UpcastError, match="did not produce v2"):
        registry.upcast({"kind": "dose", "schema_version": 1})


def test_registering_twice_or_at_the_current_version_is_refused() -> None:
    registry = registry_at_v3()
    with pytest.raises(UpcastError):
        registry.register("lab.result", from_version=1)(lambda event: event)
    with pytest.raises(UpcastError):
        registry.register("lab.result", from_version=3)


def test_the_project_registry_is_complete() -> None:
    UPCASTERS.check_complete()
