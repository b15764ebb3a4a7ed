"""The study configuration checked against `study.schema.json` without importing `jsonschema`.

The JSON Schema file stays the contract; this module interprets exactly the draft 2020-12 keywords it uses,
with `jsonschema`'s semantics and messages, because importing `jsonschema` (with `referencing`, `attrs` and
`rpds`) was a sixth of the start-up of `trialwatch replay`. A schema using any other keyword is refused when
the checker is built, so the schema cannot outgrow it unnoticed. `tests/safety_rules/test_schema_check.py`
compares the errors of both validators on the packaged studies and on mutations of every value in them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

Path = tuple[str | int, ...]
_ANNOTATIONS = frozenset(("$schema", "$id", "$defs", "$comment", "title", "description", "default", "examples"))


class SchemaError(NamedTuple):
    """One way the instance breaks the schema: where (keys and indexes from the root) and why."""

    path: Path
    message: str


class UnsupportedSchemaError(ValueError):
    """The schema uses a keyword or reference this checker does not implement."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# jsonschema's draft 2020-12 type checker
_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "string": lambda value: isinstance(value, str),
    "number": _is_number,
    "integer": lambda value: _is_number(value) and (isinstance(value, int) or value.is_integer()),
    "boolean": lambda value: isinstance(value, bool),
    "null": lambda value: value is None,
}


def _equal(one: Any, two: Any) -> bool:
    """JSON equality (jsonschema's `_utils.equal`): true and 1 differ, 1 and 1.0 do not."""
    if one is two:
        return True
    if isinstance(one, str) or isinstance(two, str):
        return bool(one == two)
    if isinstance(one, list) and isinstance(two, list):
        return len(one) == len(two) and all(_equal(a, b) for a, b in zip(one, two, strict=True))
    if isinstance(one, dict) and isinstance(two, dict):
        return len(one) == len(two) and all(key in two and _equal(value, two[key]) for key, value in one.items())
    if isinstance(one, bool) or isinstance(two, bool):
        return isinstance(one, bool) and isinstance(two, bool) and one == two
    return bool(one == two)


def _unique(items: list[Any]) -> bool:
    return not any(_equal(item, other) for index, item in enumerate(items) for other in items[:index])


def _type(value: Any, instance: Any) -> str | None:
    types = [value] if isinstance(value, str) else value
    if any(_TYPES[name](instance) for name in types):
        return None
    return f"{instance!r} is not of type {', '.join(repr(name) for name in types)}"


def _too_few(instance: Any) -> Callable[[Any], str]:
    return lambda least: f"{instance!r} {'should be non-empty' if least == 1 else 'is too short'}"


#: Keywords about the instance itself: (keyword value, instance) -> the message of its error, or None.
_CHECKS: dict[str, Callable[[Any, Any], str | None]] = {
    "type": _type,
    "enum": lambda value, instance: (
        None if any(_equal(each, instance) for each in value) else f"{instance!r} is not one of {value!r}"
    ),
    "minItems": lambda value, instance: (
        _too_few(instance)(value) if isinstance(instance, list) and len(instance) < value else None
    ),
    "uniqueItems": lambda value, instance: (
        f"{instance!r} has non-unique elements"
        if value and isinstance(instance, list) and not _unique(instance)
        else None
    ),
    "minLength": lambda value, instance: (
        _too_few(instance)(value) if isinstance(instance, str) and len(instance) < value else None
    ),
    "pattern": lambda value, instance: (
        f"{instance!r} does not match {value!r}"
        if isinstance(instance, str) and not re.search(value, instance)
        else None
    ),
    "minimum": lambda value, instance: (
        f"{instance!r} is less than the minimum of {value!r}" if _is_number(instance) and instance < value else None
    ),
    "maximum": lambda value, instance: (
        f"{instance!r} is greater than the maximum of {value!r}" if _is_number(instance) and instance > value else None
    ),
    "exclusiveMinimum": lambda value, instance: (
        f"{instance!r} is less than or equal to the minimum of {value!r}"
        if _is_number(instance) and instance <= value
        else None
    ),
    "exclusiveMaximum": lambda value, instance: (
        f"{instance!r} is greater than or equal to the maximum of {value!r}"
        if _is_number(instance) and instance >= value
        else None
    ),
}
#: Keywords that apply subschemas or look at an object's keys: the `SchemaChecker` method of each.
_APPLICATORS = {
    "$ref": "_ref",
    "properties": "_properties",
    "required": "_required",
    "additionalProperties": "_additional_properties",
    "propertyNames": "_property_names",
    "items": "_items",
    "oneOf": "_one_of",
}
_Errors = Iterator[SchemaError]


class SchemaChecker:
    """Errors of an instance against one schema (its `$ref`s local: `#/...`)."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._root = schema
        self._check_supported(schema)

    def errors(self, instance: Any) -> list[SchemaError]:
        """Every error, in `jsonschema`'s order (keywords in schema order, properties in schema order)."""
        return list(self._visit(instance, self._root, ()))

    def _visit(self, instance: Any, schema: Any, path: Path) -> _Errors:
        if schema is True or schema is False:
            if schema is False:
                yield SchemaError(path, f"False schema does not allow {instance!r}")
            return
        for keyword, value in schema.items():
            check = _CHECKS.get(keyword)
            if check is not None:
                message = check(value, instance)
                if message is not None:
                    yield SchemaError(path, message)
            elif keyword in _APPLICATORS:
                yield from getattr(self, _APPLICATORS[keyword])(value, instance, schema, path)

    def _valid(self, instance: Any, schema: Any) -> bool:
        return next(self._visit(instance, schema, ()), None) is None

    def _ref(self, value: str, instance: Any, schema: Mapping[str, Any], path: Path) -> _Errors:
        yield from self._visit(instance, self._pointer(value), path)

    def _properties(self, value: Mapping[str, Any], instance: Any, schema: Mapping[str, Any], path: Path) -> _Errors:
        if isinstance(instance, dict):
            for name, subschema in value.items():
                if name in instance:
                    yield from self._visit(instance[name], subschema, (*path, name))

    def _required(self, value: list[str], instance: Any, schema: Mapping[str, Any], path: Path) -> _Errors:
        if isinstance(instance, dict):
            yield from (SchemaError(path, f"{name!r} is a required property") for name in value if name not in instance)

    def _additional_properties(self, value: Any, instance: Any, schema: Mapping[str, Any], path: Path) -> _Errors:
        if not isinstance(instance, dict):
            return
        extras = [name for name in instance if name not in schema.get("properties", {})]
        if isinstance(value, dict):
            for name in extras:
                yield from self._visit(instance[name], value, (*path, name))
        elif value is False and extras:
            names = ", ".join(repr(name) for name in sorted(extras, key=str))
            verb = "was" if len(extras) == 1 else "were"
            yield SchemaError(path, f"Additional properties are not allowed ({names} {verb} unexpected)")

    def _property_names(self, value: Any, instance: Any, schema: Mapping[str, Any], path: Path) -> _Errors:
        if isinstance(instance, dict):
            for name in instance:
                yield from self._visit(name, value, path)

    def _items(self, value: Any, instance: Any, schema: Mapping[str, Any], path: Path) -> _Errors:
        if isinstance(instance, list):
            for index, item in enumerate(instance):
                yield from self._visit(item, value, (*path, index))

    def _one_of(self, value: list[Any], instance: Any, schema: Mapping[str, Any], path: Path) -> _Errors:
        candidates = iter(value)
        first_valid = next((each for each in candidates if self._valid(instance, each)), None)
        if first_valid is None:
            yield SchemaError(path, f"{instance!r} is not valid under any of the given schemas")
            return
        more_valid = [each for each in candidates if self._valid(instance, each)]
        if more_valid:
            schemas = ", ".join(repr(each) for each in [*more_valid, first_valid])
            yield SchemaError(path, f"{instance!r} is valid under each of {schemas}")

    def _pointer(self, reference: str) -> Any:
        if not reference.startswith("#"):
            raise UnsupportedSchemaError(f"only local references are supported, not {reference!r}")
        target: Any = self._root
        for token in reference[1:].split("/")[1:]:
            key = token.replace("~1", "/").replace("~0", "~")
            try:
                target = target[int(key)] if isinstance(target, list) else target[key]
            except (KeyError, IndexError, ValueError, TypeError):
                raise UnsupportedSchemaError(f"unresolvable reference {reference!r}") from None
        return target

    def _check_supported(self, schema: Any) -> None:
        if isinstance(schema, bool):
            return
        if not isinstance(schema, Mapping):
            raise UnsupportedSchemaError(f"a schema must be an object or a boolean, not {schema!r}")
        for keyword, value in schema.items():
            if keyword not in _CHECKS and keyword not in _APPLICATORS and keyword not in _ANNOTATIONS:
                raise UnsupportedSchemaError(f"keyword {keyword!r} is not supported by schema_check")
            if keyword == "$ref":
                self._pointer(value)
            if keyword == "type" and not {*([value] if isinstance(value, str) else value)} <= _TYPES.keys():
                raise UnsupportedSchemaError(f"unknown type {value!r}")
            if keyword in ("properties", "$defs"):
                subschemas = list(value.values())
            elif keyword in ("items", "additionalProperties", "propertyNames"):
                subschemas = [value]
            else:
                subschemas = list(value) if keyword == "oneOf" else []
            for subschema in subschemas:
                self._check_supported(subschema)
