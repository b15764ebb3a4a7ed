"""Stored laboratory and temperature results of one participant, and their time index.

A `LabValue` is the current version of one result (`result_key`); `issue` names why a final result
cannot be graded safely (LAB-DQ). `Series` keeps a test's results sorted by collection time, for
the windows of the composite rules and the baseline lookup.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

GRADED_STATUSES = frozenset({"final", "corrected"})


class LabValue(NamedTuple):
    """One result as the rules see it (canonical unit; limits as delivered with the result).

    A named tuple of atomic values on purpose: the garbage collector stops tracking such tuples, so
    the hundreds of thousands of results a replay keeps cost nothing in collections.
    """

    key: str
    test: str
    at: datetime
    value: Decimal | None
    comparator: str | None
    unit: str | None
    lln: Decimal | None
    uln: Decimal | None
    status: str
    specimen: str
    source: str
    issue: str | None = None
    derived: bool = False
    inputs: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    # `inputs` (result keys) and `sources` are set only on the ANC the engine derives itself.

    @property
    def usable(self) -> bool:
        """A final or corrected result with a numeric value that can be graded safely."""
        return self.status in GRADED_STATUSES and self.issue is None and self.value is not None

    @property
    def evidence(self) -> tuple[str, ...]:
        """Source keys of the records behind this value (a derived ANC: its WBC and percentages)."""
        return self.sources or (self.source,)

    def to_json(self) -> dict[str, Any]:
        """JSON object for the persistent state store."""
        return {
            "key": self.key,
            "test": self.test,
            "at": self.at.isoformat(),
            "value": None if self.value is None else str(self.value),
            "comparator": self.comparator,
            "unit": self.unit,
            "lln": None if self.lln is None else str(self.lln),
            "uln": None if self.uln is None else str(self.uln),
            "status": self.status,
            "specimen": self.specimen,
            "source": self.source,
            "issue": self.issue,
            "derived": self.derived,
            "inputs": list(self.inputs),
            "sources": list(self.sources),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabValue:
        """Inverse of `to_json`."""

        def dec(name: str) -> Decimal | None:
            return None if data[name] is None else Decimal(data[name])

        return cls(
            key=data["key"],
            test=data["test"],
            at=datetime.fromisoformat(data["at"]),
            value=dec("value"),
            comparator=data["comparator"],
            unit=data["unit"],
            lln=dec("lln"),
            uln=dec("uln"),
            status=data["status"],
            specimen=data["specimen"],
            source=data["source"],
            issue=data["issue"],
            derived=data["derived"],
            inputs=tuple(data["inputs"]),
            sources=tuple(data["sources"]),
        )


@dataclass(slots=True)
class Series:
    """Result keys of one test ordered by collection time (ties by arrival), as parallel lists."""

    times: list[datetime] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    def add(self, at: datetime, key: str) -> None:
        """Insert in time order (appending when results arrive in order)."""
        if not self.times or self.times[-1] <= at:
            self.times.append(at)
            self.keys.append(key)
        else:
            index = bisect_right(self.times, at)
            self.times.insert(index, at)
            self.keys.insert(index, key)

    def remove(self, at: datetime, key: str) -> None:
        """Drop one entry if present."""
        index = bisect_left(self.times, at)
        while index < len(self.times) and self.times[index] == at:
            if self.keys[index] == key:
                del self.times[index]
                del self.keys[index]
                return
            index += 1

    def between(self, start: datetime, end: datetime) -> list[str]:
        """Keys collected in [start, end]."""
        return self.keys[bisect_left(self.times, start) : bisect_right(self.times, end)]

    def before(self, moment: datetime) -> Iterator[str]:
        """Keys collected strictly before `moment`, latest first."""
        keys = self.keys
        for index in range(bisect_left(self.times, moment) - 1, -1, -1):
            yield keys[index]

    def retain(self, keys: set[str]) -> None:
        """Keep only the entries whose key is in `keys` (order unchanged)."""
        kept = [(at, key) for at, key in zip(self.times, self.keys, strict=True) if key in keys]
        self.times = [at for at, _ in kept]
        self.keys = [key for _, key in kept]

    def entries(self) -> list[tuple[datetime, str]]:
        """(time, key) pairs in order."""
        return list(zip(self.times, self.keys, strict=True))
