"""CTCAE v5.0 terminology: system organ class by MedDRA code and by CTCAE term (SAFETY_RULES §3, §6).

The table is `data/ctcae_v5.json` (837 terms with MedDRA code, term and SOC), a copy of the
team kit's `reference/ctcae_v5.json` (public NCI data), shipped in the package.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True, slots=True)
class CtcaeTerm:
    """One CTCAE term: its MedDRA code (an LLT) and system organ class name."""

    meddra: str
    term: str
    soc: str


@dataclass(frozen=True, slots=True)
class Terminology:
    """Lookups of the CTCAE table; terms are matched ignoring case."""

    by_code: Mapping[str, CtcaeTerm]
    by_term: Mapping[str, CtcaeTerm]

    def by_code_or_term(self, code: str | None, *terms: str | None) -> CtcaeTerm | None:
        """The CTCAE term of a MedDRA code, else of the first name that is a CTCAE term."""
        found = self.by_code.get(code) if code else None
        for name in terms:
            if found is not None:
                break
            if name:
                found = self.by_term.get(name.strip().casefold())
        return found


def build_terminology(rows: list[dict[str, str]]) -> Terminology:
    """Index CTCAE rows (`meddra`, `term`, `soc`) by code and by case-folded term."""
    terms = [CtcaeTerm(row["meddra"].strip(), row["term"].strip(), row["soc"].strip()) for row in rows]
    return Terminology(
        by_code={t.meddra: t for t in terms},
        by_term={t.term.casefold(): t for t in terms},
    )


@cache
def ctcae_v5() -> Terminology:
    """The packaged CTCAE v5.0 table (read once per process)."""
    text = resources.files(__package__).joinpath("data", "ctcae_v5.json").read_text(encoding="utf-8")
    rows: list[dict[str, str]] = json.loads(text)
    return build_terminology(rows)
