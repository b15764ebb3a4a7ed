"""Typed reading of TrialWatch record keys (INTERFACES §1.3): a wrong type is a rejection naming the key.

An absent key, JSON null and "" all mean "not sent". Y/N flags are the strings "Y" or "N"; dates are
ISO 8601 (no offset = UTC); numbers may be JSON numbers or numeric strings.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.ingest.domain.model import InputError
from services.ingest.domain.quantities import number_of
from services.ingest.domain.times import iso_time

Record = dict[str, Any]

_JSON_TYPES = {dict: "object", list: "array", bool: "boolean", int: "number", float: "number", str: "string"}
_FLAGS = {"Y": True, "N": False}
_GRADES = {"1": 1, "2": 2, "3": 3, "4": 4, "5": 5}


def json_type(value: object) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def text(data: Record, key: str) -> str | None:
    """A string value."""
    value = data.get(key)
    if type(value) is str:
        return value or None
    if value is None:
        return None
    raise InputError(key, f"expected a string, got a JSON {json_type(value)}")


def required_text(data: Record, key: str) -> str:
    value = data.get(key)
    if type(value) is str and value:
        return value
    if value is None or value == "":
        raise InputError(key, "missing required key")
    raise InputError(key, f"expected a string, got a JSON {json_type(value)}")


def code(data: Record, key: str) -> str | None:
    """An identifier or code: a string, or an integer written as a JSON number (MedDRA codes, RECID)."""
    value = data.get(key)
    if type(value) is int:
        return str(value)
    return text(data, key)


def required_code(data: Record, key: str) -> str:
    value = code(data, key)
    if value is None:
        raise InputError(key, "missing required key")
    return value


def choice(data: Record, key: str, allowed: tuple[str, ...]) -> str:
    """A required controlled term."""
    value = required_text(data, key)
    if value not in allowed:
        raise InputError(key, f"{value!r} is not one of {', '.join(allowed)}")
    return value


def flag(data: Record, key: str) -> bool | None:
    """A Y/N flag."""
    value = data.get(key)
    if type(value) is str and value in _FLAGS:
        return _FLAGS[value]
    value = text(data, key)  # absent, or an error to name
    if value is None:
        return None
    raise InputError(key, f"{value!r} is not a Y/N flag")


def flags(data: Record, keys: Iterable[tuple[str, str]]) -> dict[str, bool]:
    """The Y/N flags sent among `keys` ((key, name) pairs), under their names, in the order of `keys`."""
    return {name: found for key, name in keys if key in data and (found := flag(data, key)) is not None}


def number(data: Record, key: str) -> Decimal | None:
    """A number (JSON number or numeric string)."""
    value = data.get(key)
    if value is None or value == "":
        return None
    found = number_of(value)
    if found is None:
        raise InputError(key, f"expected a number, got {value!r}")
    return found


def limit(data: Record, key: str) -> Decimal | None:
    """A reference limit; an unreadable string is no limit (grade undetermined, SAFETY_RULES §1)."""
    return limit_value(data.get(key), key)


def limit_value(value: object, key: str) -> Decimal | None:
    """As `limit`, for the value of `key` already taken from the record."""
    if value is None or isinstance(value, str):
        return number_of(value) if value else None
    return number({key: value}, key)


def original(data: Record, key: str) -> str:
    """A result as sent (--ORRES): a string or a JSON number, as text; "" when not sent."""
    value = data.get(key)
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return text(data, key) or ""


def moment(data: Record, key: str) -> datetime | None:
    """An ISO 8601 date or date-time as aware UTC."""
    value = text(data, key)
    if value is None:
        return None
    found = iso_time(value)
    if found is None:
        raise InputError(key, f"{value!r} is not an ISO 8601 date or date-time")
    return found


def required_moment(data: Record, key: str) -> datetime:
    found = moment(data, key)
    if found is None:
        raise InputError(key, "missing required key")
    return found


def grade(data: Record, key: str) -> int | None:
    """A toxicity grade "1"-"5" (or the JSON number 1-5)."""
    value = data.get(key)
    if value is None or value == "":
        return None
    found = _GRADES.get(value) if isinstance(value, str) else None
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
        found = value
    if found is None:
        raise InputError(key, f"{value!r} is not a grade 1-5")
    return found
