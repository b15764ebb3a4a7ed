"""Golden JSON per event family and schema version: every fixture must keep parsing, forever.

A fixture is never edited once committed. A breaking change adds ``<kind>/v<N+1>.json`` beside the old
one and an upcaster, and the old fixture still has to parse (through the upcaster).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from shared.events import CLINICAL_EVENT_ADAPTER, AlertChanged, ClinicalEvent, Signal
from shared.events.upcasters import UPCASTERS, VERSIONED_FAMILIES, current_versions

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"
FIXTURES = sorted(GOLDEN.glob("*/v*.json"))
CURRENT = {**current_versions(VERSIONED_FAMILIES), "signal": 1}


def fixture_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def parse(kind: str, raw: dict[str, Any]) -> BaseModel:
    if kind == "signal":  # versioned by its topic (trialwatch.signals.v1), its JSON carries no kind
        return Signal.model_validate(raw)
    current = UPCASTERS.upcast(raw)
    if kind == "alert":
        return AlertChanged.model_validate(current)
    return CLINICAL_EVENT_ADAPTER.validate_python(current)


def dump(model: BaseModel) -> dict[str, Any]:
    return model.to_public() if isinstance(model, Signal) else model.model_dump(mode="json")


@pytest.mark.parametrize("path", FIXTURES, ids=fixture_id)
def test_golden_fixture_parses_into_its_family(path: Path) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    kind, version = path.parent.name, int(path.stem.removeprefix("v"))
    if kind != "signal":
        assert (raw["kind"], raw["schema_version"]) == (kind, version), "fixture is filed under the wrong folder"
    model = parse(kind, raw)
    assert getattr(model, "kind") == kind  # noqa: B009 - every family has a kind, the base class does not


@pytest.mark.parametrize(
    "path", [p for p in FIXTURES if int(p.stem.removeprefix("v")) == CURRENT[p.parent.name]], ids=fixture_id
)
def test_current_version_fixture_serialises_back_to_the_same_json(path: Path) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    dumped = dump(parse(path.parent.name, raw))
    assert {key: dumped.get(key) for key in raw} == raw


def test_every_family_has_a_golden_fixture_for_its_current_version() -> None:
    present = {fixture_id(path) for path in FIXTURES}
    missing = sorted(f"{kind}/v{version}" for kind, version in CURRENT.items() if f"{kind}/v{version}" not in present)
    assert not missing, f"add tests/fixtures/golden/<kind>/v<N>.json for: {', '.join(missing)}"


def test_every_clinical_family_in_the_contract_union_is_versioned() -> None:
    union = get_args(ClinicalEvent)[0]
    assert set(get_args(union)) <= set(VERSIONED_FAMILIES), "add the new family to VERSIONED_FAMILIES"
