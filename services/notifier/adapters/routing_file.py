"""Reads ``<study>.routing.yaml`` files, validates each against ``studies/routing.schema.json`` and builds
the typed configuration. Any problem refuses to start the notifier (RoutingConfigError naming the file
and the key): an unknown key, a wrong type, a receiver no one defines, two files for one study.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import jsonschema
import yaml

from services.notifier.domain.routing_config import RoutingConfig, RoutingConfigError, build_routing
from shared.settings import REPO_ROOT

SCHEMA_PATH = REPO_ROOT / "studies" / "routing.schema.json"


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def parse_routing(data: object, origin: str) -> RoutingConfig:
    errors = sorted(_validator().iter_errors(data), key=lambda error: list(error.absolute_path))
    if errors:
        where = "/".join(str(part) for part in errors[0].absolute_path) or "(top level)"
        raise RoutingConfigError(f"{origin}: invalid routing configuration at {where}: {errors[0].message}")
    assert isinstance(data, dict)  # the schema requires an object
    try:
        return build_routing(data)
    except RoutingConfigError as error:
        raise RoutingConfigError(f"{origin}: {error}") from error


def load_routing_file(path: Path) -> RoutingConfig:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise RoutingConfigError(f"{path}: cannot read the routing configuration: {error}") from error
    return parse_routing(data, str(path))


def load_routing(paths: Iterable[Path]) -> dict[str, RoutingConfig]:
    """Study id -> routing; at least one file, at most one per study."""
    configs: dict[str, RoutingConfig] = {}
    origins: dict[str, Path] = {}
    for path in paths:
        config = load_routing_file(path)
        if config.study_id in configs:
            raise RoutingConfigError(f"{path}: study {config.study_id} is already routed by {origins[config.study_id]}")
        configs[config.study_id], origins[config.study_id] = config, path
    if not configs:
        raise RoutingConfigError("no routing configuration found (TRIALWATCH_ROUTING, or studies/*.routing.yaml)")
    return configs
