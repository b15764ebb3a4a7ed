"""Loading a study configuration: YAML, validated against `study.schema.json`, checked against the registry.

The schema is applied by `schema_check` (the keywords it uses, with jsonschema's semantics and messages):
importing `jsonschema` cost a sixth of `trialwatch replay`'s start-up.

Startup fails loudly (StudyConfigError) on an unknown key, a rule of the registry without
configuration, configuration of a rule the registry does not know, or inconsistent cross-references
(STYLE.md principle 4). The replay lookup order (INTERFACES §4) is `select_study`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from services.safety_rules.domain.config_build import build_study
from services.safety_rules.domain.config_model import StudyConfig
from services.safety_rules.domain.registry import RULE_IDS
from services.safety_rules.domain.schema_check import SchemaChecker

STUDY_ENV = "TRIALWATCH_STUDY"
_PACKAGED_STUDY = "anakinra-ad.yaml"
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class StudyConfigError(ValueError):
    """The study configuration cannot be used; the message names the offending key."""


def _data_text(name: str) -> str:
    return resources.files(__package__).joinpath("data", name).read_text(encoding="utf-8")


def study_schema() -> dict[str, Any]:
    """The JSON Schema of a study configuration (shipped with the package)."""
    schema: dict[str, Any] = json.loads(_data_text("study.schema.json"))
    return schema


@cache
def _checker() -> SchemaChecker:
    # The schema itself is checked against its metaschema by the tests, not at every start (a quarter of a
    # second of `trialwatch replay`'s startup).
    return SchemaChecker(study_schema())


def _configured_rule_ids(data: Mapping[str, Any]) -> set[str]:
    sections = (data.get(name) for name in ("rules", "halting", "clocks"))
    return {rule_id for section in sections if isinstance(section, Mapping) for rule_id in section}


def _check_registry(data: Mapping[str, Any]) -> None:
    configured = _configured_rule_ids(data)
    missing = sorted(RULE_IDS - configured)
    unknown = sorted(configured - RULE_IDS)
    if missing:
        raise StudyConfigError(f"rules of the registry without configuration: {', '.join(missing)}")
    if unknown:
        raise StudyConfigError(f"configuration for rules the registry does not know: {', '.join(unknown)}")


def parse_study(data: Any) -> StudyConfig:
    """Validate a parsed configuration document and build the typed `StudyConfig`."""
    if not isinstance(data, Mapping):
        raise StudyConfigError("a study configuration must be a mapping at top level")
    _check_registry(data)
    errors = sorted(_checker().errors(data), key=lambda error: list(error.path))
    if errors:
        where = "/".join(str(part) for part in errors[0].path) or "(top level)"
        raise StudyConfigError(f"invalid study configuration at {where}: {errors[0].message}")
    try:
        return build_study(data)
    except ValueError as error:
        raise StudyConfigError(str(error)) from error


def parse_study_text(text: str, origin: str) -> StudyConfig:
    """Parse YAML text (`origin` names it in errors)."""
    try:
        data = yaml.load(text, Loader=_YAML_LOADER)  # a safe loader, in C when libyaml is there
    except yaml.YAMLError as error:
        raise StudyConfigError(f"{origin}: not valid YAML: {error}") from error
    try:
        return parse_study(data)
    except StudyConfigError as error:
        raise StudyConfigError(f"{origin}: {error}") from error


def load_study(path: str | Path) -> StudyConfig:
    """Load and validate the study configuration at `path`."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise StudyConfigError(f"{file}: cannot read the study configuration: {error}") from error
    return parse_study_text(text, str(file))


@cache
def packaged_study() -> StudyConfig:
    """The configuration of ANAKINRA-AD shipped inside the package."""
    return parse_study_text(_data_text(_PACKAGED_STUDY), f"package:{_PACKAGED_STUDY}")


def select_study(path: str | Path | None, environ: Mapping[str, str]) -> StudyConfig:
    """INTERFACES §4 order: the `--study` file, else $TRIALWATCH_STUDY, else the packaged ANAKINRA-AD."""
    chosen = path or environ.get(STUDY_ENV)
    return load_study(chosen) if chosen else packaged_study()
