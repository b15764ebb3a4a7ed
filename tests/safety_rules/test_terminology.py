"""CTCAE v5.0 lookups used for the system organ class (SAFETY_RULES §3, §6 "System organ class")."""

from __future__ import annotations

from services.safety_rules.domain.terminology import ctcae_v5


def test_soc_by_meddra_code() -> None:
    term = ctcae_v5().by_code["10040872"]
    assert (term.term, term.soc) == ("Skin infection", "Infections and infestations")


def test_soc_by_term_ignoring_case() -> None:
    found = ctcae_v5().by_code_or_term(None, None, "  ANAPHYLAXIS ")
    assert found is not None
    assert (found.meddra, found.soc) == ("10002218", "Immune system disorders")


def test_code_wins_over_terms_then_first_matching_term() -> None:
    table = ctcae_v5()
    found = table.by_code_or_term("10019211", "Nausea")
    assert found is not None and found.term == "Headache"
    found = table.by_code_or_term("99999999", "not a term", "Nausea")
    assert found is not None and found.term == "Nausea"
    assert table.by_code_or_term(None, "not a term") is None


def test_the_table_has_every_term() -> None:
    assert len(ctcae_v5().by_code) == 837
