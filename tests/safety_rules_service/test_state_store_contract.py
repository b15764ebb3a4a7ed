"""The in-memory store passes the StateStore contract (the SQL store runs the same checks in
tests/integration/test_rules_live.py against PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from safety_rules_service.store_contract import CONTRACT, OpenStore
from services.safety_rules.domain import InMemoryStateStore


@pytest.mark.parametrize("check", CONTRACT, ids=lambda check: check.__name__)
def test_in_memory_store_meets_the_contract(check: Callable[[OpenStore], None]) -> None:
    store = InMemoryStateStore()
    check(lambda: store)
