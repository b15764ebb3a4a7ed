"""Normalisation tables loaded from `data/terminology.yaml` (LOINC, UCUM spellings, status codes).

The YAML is the reviewed source of clinical knowledge; this module only turns it into lookup dicts and
fails loudly on anything it does not understand.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from decimal import Decimal
from importlib import resources
from typing import Any

import yaml

from shared.events.clinical import ResultStatus

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when built: a tenth of the time
_STATUSES: frozenset[str] = frozenset(("final", "corrected", "preliminary", "deleted", "cancelled"))
_TOP_KEYS = {"version", "tests", "units", "result_status", "adverse_event", "redaction"}


@dataclass(frozen=True, slots=True)
class Conversion:
    """canonical = (value + add) * multiply / divide (DOMAIN §9.3), in Decimal."""

    add: Decimal
    multiply: Decimal
    divide: Decimal
    identity: bool
    _hash: int = field(compare=False, repr=False)  # a cache key on the HL7 hot path: hashed once

    @classmethod
    def of(cls, add: Decimal, multiply: Decimal, divide: Decimal) -> Conversion:
        if divide == 0:
            raise ValueError("terminology: a unit conversion divides by zero")
        return cls(add, multiply, divide, add == 0 and multiply == divide, hash((add, multiply, divide)))

    def __hash__(self) -> int:
        return self._hash

    def apply(self, value: Decimal) -> Decimal:
        if self.identity:
            return value
        return (value + self.add) * self.multiply / self.divide


@dataclass(frozen=True, slots=True)
class UnitFamily:
    """A canonical unit and the conversion of every accepted spelling to it."""

    canonical: str
    spellings: dict[str, Conversion]
    folded: dict[str, Conversion]

    def conversion(self, unit: str) -> Conversion | None:
        """The conversion for `unit` as sent: exact spelling, else case- and micro-sign-insensitive."""
        found = self.spellings.get(unit)
        if found is None:
            found = self.folded.get(_fold(unit))
        return found


@dataclass(frozen=True, slots=True, eq=False)
class AdverseEventCodes:
    """FHIR AdverseEvent code lists (INTERFACES §1.2)."""

    serious: frozenset[str]
    non_serious: frozenset[str]
    fatal_outcomes: frozenset[str]
    severity_grade: dict[str, int]
    grade_extension_suffix: str
    meddra_system: str


@dataclass(frozen=True, slots=True, eq=False)
class Terminology:
    """Every lookup the parsers need, built once from the YAML."""

    version: int
    loinc_to_test: dict[str, str]
    test_family: dict[str, UnitFamily]
    vital_tests: frozenset[str]
    hl7_status: dict[str, ResultStatus]
    fhir_status: dict[str, ResultStatus]
    adverse_event: AdverseEventCodes
    pid_redacted_fields: tuple[int, ...]
    dropped_segments: frozenset[str]


def _fold(unit: str) -> str:
    return unit.strip().replace("µ", "u").replace("μ", "u").lower()


def _decimal(raw: Any, where: str) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise ValueError(f"terminology {where}: expected a number written as int or string, got {raw!r}")
    return Decimal(str(raw))


def _conversion(raw: Any, where: str) -> Conversion:
    if not isinstance(raw, dict):
        return Conversion.of(Decimal(0), _decimal(raw, where), Decimal(1))
    unknown = set(raw) - {"add", "multiply", "divide"}
    if unknown:
        raise ValueError(f"terminology {where}: unknown keys {sorted(unknown)}")
    return Conversion.of(
        _decimal(raw.get("add", 0), where),
        _decimal(raw.get("multiply", 1), where),
        _decimal(raw.get("divide", 1), where),
    )


def _families(raw: dict[str, Any]) -> dict[str, UnitFamily]:
    families = {}
    for name, spec in raw.items():
        spellings = {unit: _conversion(c, f"units.{name}.{unit}") for unit, c in spec["spellings"].items()}
        if spec["canonical"] not in spellings:
            raise ValueError(f"terminology units.{name}: canonical unit is not among its spellings")
        folded = {_fold(unit): conversion for unit, conversion in spellings.items()}
        families[name] = UnitFamily(spec["canonical"], spellings, folded)
    return families


def _statuses(raw: dict[str, str], where: str) -> dict[str, ResultStatus]:
    bad = {code: status for code, status in raw.items() if status not in _STATUSES}
    if bad:
        raise ValueError(f"terminology {where}: unknown statuses {bad}")
    return {str(code): status for code, status in raw.items()}  # type: ignore[misc]


def _adverse_event(raw: dict[str, Any]) -> AdverseEventCodes:
    return AdverseEventCodes(
        serious=frozenset(raw["serious"]),
        non_serious=frozenset(raw["non_serious"]),
        fatal_outcomes=frozenset(raw["fatal_outcomes"]),
        severity_grade={str(k): int(v) for k, v in raw["severity_grade"].items()},
        grade_extension_suffix=str(raw["grade_extension_suffix"]),
        meddra_system=str(raw["meddra_system"]),
    )


def build_terminology(raw: dict[str, Any]) -> Terminology:
    """Validate the YAML document and build the lookup tables; raises ValueError on anything unexpected."""
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise ValueError(f"terminology: unknown top-level keys {sorted(unknown)}")
    families = _families(raw["units"])
    loinc_to_test: dict[str, str] = {}
    test_family: dict[str, UnitFamily] = {}
    vital: set[str] = set()
    for test, spec in raw["tests"].items():
        test_family[test] = families[spec["family"]]
        loinc_to_test.update(dict.fromkeys(spec["loinc"], test))
        if spec.get("vital", False):
            vital.add(test)
    return Terminology(
        version=int(raw["version"]),
        loinc_to_test=loinc_to_test,
        test_family=test_family,
        vital_tests=frozenset(vital),
        hl7_status=_statuses(raw["result_status"]["hl7"], "result_status.hl7"),
        fhir_status=_statuses(raw["result_status"]["fhir"], "result_status.fhir"),
        adverse_event=_adverse_event(raw["adverse_event"]),
        pid_redacted_fields=tuple(int(n) for n in raw["redaction"]["pid_fields"]),
        dropped_segments=frozenset(raw["redaction"]["drop_segments"]),
    )


@functools.cache
def packaged_terminology() -> Terminology:
    """The terminology shipped with the package (`services/ingest/domain/data/terminology.yaml`)."""
    text = resources.files("services.ingest.domain").joinpath("data/terminology.yaml").read_text("utf-8")
    return build_terminology(yaml.load(text, Loader=_YAML_LOADER))
