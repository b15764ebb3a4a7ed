"""Remembered results of pure functions of the study configuration and a few values (grades, AE coding).

Results are kept per configuration object, in tables cleared when full, so memory stays bounded whatever
the input. The owner is held by its table, so its `id` cannot be reused by another object meanwhile.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

#: Entries per table before it is cleared.
TABLE_SIZE = 1 << 16

_tables: dict[tuple[int, str], tuple[object, dict[Hashable, Any]]] = {}


def table(owner: object, name: str) -> dict[Hashable, Any]:
    """The memo table `name` of `owner`."""
    found = _tables.get((id(owner), name))
    if found is None or found[0] is not owner:
        found = _tables[id(owner), name] = (owner, {})
    return found[1]


def remember(memo: dict[Hashable, Any], key: Hashable, value: Any) -> Any:
    """Store a computed value (clearing a full table first) and return it."""
    if len(memo) >= TABLE_SIZE:
        memo.clear()
    memo[key] = value
    return value
