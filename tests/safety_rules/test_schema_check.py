"""`schema_check` applies study.schema.json as `jsonschema` does: the same errors, at the same places, with the
same messages, in the same order (the first, after sorting by place, is what a refused study names), on the
packaged studies and on a mutation of every value in them; and it refuses a schema it cannot apply."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Any

import jsonschema
import pytest
import yaml

from services.safety_rules.domain.config import study_schema
from services.safety_rules.domain.schema_check import SchemaChecker, UnsupportedSchemaError

from .factories import STUDIES

Path = tuple[str | int, ...]
BAYESIAN = {"bayesian": {"prior_alpha": 1, "prior_beta": 1, "target_rate": 0.5, "threshold": 0.9}}
# Values of every JSON type, at and beside the schema's limits and enumerations
SUBSTITUTES: list[Any] = [
    None, True, False, 0, 1, -1, 0.5, 1.0, 5, 6, 1e9, "", "x", "LOUD", "NEUT", "24h", "0d", "a week", "12345678",
    "1234567", [], [1, 1], ["NEUT", "NEUT"], ["NEUT"], [{"op": "lt", "value": 1}], {}, {"op": "lt", "value": 1},
    {"op": "lt", "ref": "ULN"}, {"op": "lt", "value": 1, "ref": "ULN"}, {"participants": 2}, {"participants": 0},
    BAYESIAN, {**BAYESIAN, "participants": 2},
]  # fmt: skip


def _documents() -> dict[str, Any]:
    return {
        name: yaml.safe_load((STUDIES / name).read_text(encoding="utf-8"))
        for name in ("anakinra-ad.yaml", "variant-example.yaml")
    }


def _nodes(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    yield path, value
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        yield from _nodes(child, (*path, key))


def _replaced(document: Any, path: Path, new: Any) -> Any:
    """`document` with `new` at `path`, each object above it cut down to the key on the path: the missing
    siblings give the same `required` errors from both validators, and a mutation is checked in a fraction of
    a millisecond. Containers on the path are copied, not mutated."""

    def rebuild(node: Any, depth: int) -> Any:
        if depth == len(path):
            return new
        key = path[depth]
        if isinstance(node, dict):
            return {key: rebuild(node[key], depth + 1)}
        items = list(node)
        items[int(key)] = rebuild(node[key], depth + 1)
        return items

    return rebuild(document, 0)


def _mutations(document: Any) -> Iterator[Any]:
    """Each value replaced by a few substitutes (taken in turn), each key removed, an unknown key added to
    each object and each array's first item repeated."""
    for index, (path, value) in enumerate(_nodes(document)):
        if path:
            for offset in range(4):
                yield _replaced(document, path, SUBSTITUTES[(index * 4 + offset) % len(SUBSTITUTES)])
        if isinstance(value, dict):
            yield _replaced(document, path, {**value, "unexpected_key": 1})
            for key in value:
                yield _replaced(document, path, {other: v for other, v in value.items() if other != key})
        if isinstance(value, list) and value and path:
            yield _replaced(document, path, [*value, value[0]])


@cache
def _validators() -> tuple[jsonschema.Draft202012Validator, SchemaChecker]:
    return jsonschema.Draft202012Validator(study_schema()), SchemaChecker(study_schema())


def _errors(document: Any) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    """(jsonschema's, schema_check's) errors, in config.parse_study's order: stably sorted by place."""
    reference, checker = _validators()
    expected = [(tuple(error.absolute_path), error.message) for error in reference.iter_errors(document)]
    found = [(error.path, error.message) for error in checker.errors(document)]
    return sorted(expected, key=lambda error: list(error[0])), sorted(found, key=lambda error: list(error[0]))


@pytest.mark.parametrize("name", ["anakinra-ad.yaml", "variant-example.yaml"])
def test_the_studies_meet_the_schema(name: str) -> None:
    expected, found = _errors(_documents()[name])
    assert expected == found == []


def test_errors_of_mutated_studies_are_jsonschemas() -> None:
    compared = refused = 0
    for mutation in _mutations(_documents()["anakinra-ad.yaml"]):  # the variant has the same shape
        expected, found = _errors(mutation)
        assert found == expected, mutation
        compared += 1
        refused += bool(expected)
    assert compared > 3000  # every value of the study was mutated
    assert refused > compared // 2  # and most mutations break the schema


@pytest.mark.parametrize(
    ("value", "schema"),
    [
        (True, {"enum": [1]}),  # true is not 1 in JSON
        (1.0, {"enum": [1]}),  # 1.0 is 1
        (2.0, {"type": "integer"}),
        (True, {"type": "number"}),
        ([1, True], {"uniqueItems": True}),
        ([1, 1.0], {"uniqueItems": True}),
        ([{"a": [1]}, {"a": [1.0]}], {"uniqueItems": True}),
        ([[1, 2], [1, 3]], {"uniqueItems": True}),
        ({"a": 1, "b": 2}, {"properties": {"a": {}}, "additionalProperties": False}),
        ({"a": 1}, {"oneOf": [{"type": "object"}, {"required": ["a"]}]}),
        ("ab", {"minLength": 3}),
        ([], {"minItems": 2}),
        (False, False),
    ],
)
def test_edge_cases_are_jsonschemas(value: Any, schema: dict[str, Any] | bool) -> None:
    expected = [error.message for error in jsonschema.Draft202012Validator(schema).iter_errors(value)]
    root = {"$defs": {"it": schema}, "$ref": "#/$defs/it"}  # a boolean schema can only sit below the root
    assert [error.message for error in SchemaChecker(root).errors(value)] == expected


@pytest.mark.parametrize(
    "schema",
    [
        {"if": {"type": "string"}},
        {"properties": {"a": {"format": "date"}}},
        {"$ref": "other.json#/a"},
        {"$ref": "#/$defs/missing"},
        {"type": "decimal"},
    ],
)
def test_refuses_a_schema_it_cannot_apply(schema: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedSchemaError):
        SchemaChecker(schema)
