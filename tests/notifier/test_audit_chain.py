"""The audit chain recomputed: every kind of tampering names the first bad entry."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from services.notifier.domain.audit_chain import GENESIS_HASH, AuditContent, AuditEntry, ChainHead, verify

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def chain(length: int) -> tuple[list[AuditEntry], ChainHead]:
    entries: list[AuditEntry] = []
    prev = GENESIS_HASH
    for seq in range(1, length + 1):
        content = AuditContent(seq, T0 + timedelta(seconds=seq), "system", "alert.opened", f"a{seq}", {"n": seq})
        digest = content.digest(prev)
        entries.append(AuditEntry(content, prev, digest))
        prev = digest
    return entries, ChainHead(length, prev)


def test_an_intact_chain_verifies() -> None:
    entries, head = chain(5)
    assert verify(entries, head).ok and verify(entries, head).entries == 5


def test_an_empty_chain_verifies() -> None:
    assert verify([], None).ok


def test_an_edited_entry_is_named() -> None:
    entries, head = chain(5)
    entries[2] = replace(entries[2], content=replace(entries[2].content, detail={"n": 99}))
    verdict = verify(entries, head)
    assert not verdict.ok and verdict.seq == 3 and "altered" in (verdict.problem or "")


def test_a_deleted_entry_is_named() -> None:
    entries, head = chain(5)
    del entries[1]
    verdict = verify(entries, head)
    assert not verdict.ok and verdict.seq == 2 and "entry 2 was removed" in (verdict.problem or "")


def test_reordered_entries_are_named() -> None:
    entries, head = chain(5)
    second, third = entries[1], entries[2]
    entries[1] = replace(third, content=replace(third.content, seq=2))
    entries[2] = replace(second, content=replace(second.content, seq=3))
    verdict = verify(entries, head)
    assert not verdict.ok and verdict.seq == 2


def test_a_truncated_newest_entry_is_caught_by_the_head() -> None:
    entries, head = chain(5)
    verdict = verify(entries[:-1], head)
    assert not verdict.ok and verdict.seq == 5 and "truncated" in (verdict.problem or "")


def test_an_edited_newest_entry_with_a_recomputed_hash_is_caught_by_the_head() -> None:
    entries, head = chain(5)
    last = entries[-1]
    content = replace(last.content, actor="intruder")
    entries[-1] = AuditEntry(content, last.prev_hash, content.digest(last.prev_hash))
    verdict = verify(entries, head)
    assert not verdict.ok and verdict.seq == 5 and "chain head" in (verdict.problem or "")
