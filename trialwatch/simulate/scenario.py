"""A scenario file (YAML) as frozen values, validated against scenarios/scenario.schema.json on load.

A scenario may `include` a base file (the protocol, the laboratory, the officer's habits): the base's top-level
keys are taken first and the scenario's own keys replace them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from trialwatch.devstack.paths import REPO_ROOT

SCENARIOS = REPO_ROOT / "scenarios"
SCHEMA = SCENARIOS / "scenario.schema.json"
DEFAULT_SCENARIO = SCENARIOS / "default.yaml"
DEFAULT_DAYS_PER_SECOND = 2.75
_DURATION = re.compile(r"^([0-9]+)(m|h|d)$")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}


class ScenarioError(ValueError):
    """The scenario file cannot be used; the message names the file and the offending key."""


def duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if match is None:
        raise ScenarioError(f"not a duration: {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class LabTest:
    code: str
    loinc: str
    name: str
    unit: str
    low: float
    high: float
    typical: tuple[float, float]
    decimals: int


@dataclass(frozen=True)
class Scenario:
    """The validated scenario; ``raw`` keeps the merged document for the parts read by one module only."""

    name: str
    description: str
    seed: int
    study_id: str
    start: date
    days_per_second: float
    raw: dict[str, Any]
    path: Path

    @property
    def protocol(self) -> dict[str, Any]:
        return dict(self.raw["protocol"])

    @property
    def episodes(self) -> list[dict[str, Any]]:
        return list(self.raw["episodes"])

    @property
    def officer(self) -> dict[str, Any]:
        return dict(self.raw["officer"])

    @property
    def facility(self) -> str:
        return str(self.raw["laboratory"]["sending_facility"])

    @property
    def tests(self) -> dict[str, LabTest]:
        found: dict[str, LabTest] = {}
        for code, spec in self.raw["laboratory"]["tests"].items():
            low, high = spec["typical"]
            found[code] = LabTest(
                code,
                spec["loinc"],
                spec["name"],
                spec["unit"],
                spec["low"],
                spec["high"],
                (low, high),
                int(spec.get("decimals", 1)),
            )
        return found

    def day_start(self, study_day: int) -> datetime:
        """Midnight UTC of a study day (day 0 = the first enrolment)."""
        return datetime(self.start.year, self.start.month, self.start.day, tzinfo=UTC) + timedelta(days=study_day)


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _read(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in seen:
        raise ScenarioError(f"{path}: includes itself")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ScenarioError(f"{path}: {error}") from error
    if not isinstance(document, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping")
    included = document.pop("include", None)
    if included is None:
        return document
    return {**_read((path.parent / str(included)).resolve(), (*seen, path)), **document}


def auto_start(today: date) -> date:
    """The first day of the month after next: every date of a ~330-day trial lies ahead of the wall clock,
    so the live services' wall-clock tick never breaches a regulatory clock; the data clock does."""
    month = today.month + 2
    return date(today.year + (month - 1) // 12, (month - 1) % 12 + 1, 1)


def load_scenario(path: str | Path, *, today: date | None = None, start: date | None = None) -> Scenario:
    """Reads, merges and validates ``path``; ``start`` overrides the scenario's start date."""
    resolved = Path(path).expanduser().resolve()
    document = _read(resolved)
    errors = sorted(_validator().iter_errors(document), key=lambda error: list(error.absolute_path))
    if errors:
        where = "/".join(str(part) for part in errors[0].absolute_path) or "(top level)"
        raise ScenarioError(f"{resolved}: {where}: {errors[0].message}")
    configured = document.get("start_date", "auto")
    if start is None:
        start = (
            auto_start(today or datetime.now(UTC).date()) if configured == "auto" else date.fromisoformat(configured)
        )
    pace = document.get("pace", {}).get("days_per_second", DEFAULT_DAYS_PER_SECOND)
    return Scenario(
        name=document["scenario"],
        description=" ".join(str(document["description"]).split()),
        seed=int(document["seed"]),
        study_id=document["study_id"],
        start=start,
        days_per_second=float(pace),
        raw=document,
        path=resolved,
    )
