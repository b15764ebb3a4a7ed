"""The hash chain of the audit trail: each entry's hash covers its content and the previous entry's hash;
the head (kept in its own table) names the newest entry and its hash.

``verify`` names the first entry that breaks the chain: an edited entry (its hash no longer matches), a
removed or reordered one (its ``prev_hash`` is not its predecessor's hash), and a truncated newest entry
(the head names an entry that is gone, or a hash the newest entry does not have). What it cannot see:
someone who rewrites an entry, every hash after it and the head together; exporting the head elsewhere
(a signed daily digest, a WORM store) closes that gap.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class AuditContent:
    """What one audit entry says; its hash also covers the previous entry's hash."""

    seq: int
    recorded_at: datetime
    actor: str
    action: str
    alert_id: str | None
    detail: Mapping[str, Any]

    def digest(self, prev_hash: str) -> str:
        content = {
            "recorded_at": self.recorded_at.astimezone(UTC).isoformat(),
            "actor": self.actor,
            "action": self.action,
            "alert_id": self.alert_id,
            "detail": dict(self.detail),
        }
        canonical = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
        return hashlib.sha256(prev_hash.encode() + canonical).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    content: AuditContent
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainHead:
    last_seq: int | None
    last_hash: str


@dataclass(frozen=True)
class Verdict:
    ok: bool
    entries: int
    problem: str | None = None
    seq: int | None = None


def _problem(entry: AuditEntry, last_seq: int, prev_hash: str) -> tuple[int, str] | None:
    seq = entry.content.seq
    if entry.prev_hash != prev_hash:
        if seq > last_seq + 1:
            gone = f"entry {last_seq + 1} was" if seq == last_seq + 2 else f"entries {last_seq + 1}..{seq - 1} were"
            return last_seq + 1, f"{gone} removed (entry {seq} no longer follows its predecessor)"
        return seq, f"entry {seq} does not follow entry {last_seq}: reordered, or its predecessor was replaced"
    if entry.content.digest(entry.prev_hash) != entry.hash:
        return seq, f"entry {seq} was altered (its content no longer matches its hash)"
    return None


def verify(entries: Iterable[AuditEntry], head: ChainHead | None) -> Verdict:
    """Entries in sequence order; the head of the same chain (None when nothing was ever appended)."""
    prev_hash, count, last_seq = GENESIS_HASH, 0, 0
    for entry in entries:
        broken = _problem(entry, last_seq, prev_hash)
        if broken is not None:
            return Verdict(False, count, broken[1], broken[0])
        prev_hash, count, last_seq = entry.hash, count + 1, entry.content.seq
    head_seq = head.last_seq if head is not None else None
    head_hash = head.last_hash if head is not None else GENESIS_HASH
    if (head_seq or 0) > last_seq:
        problem = f"entry {head_seq} (the newest, named by the chain head) is missing: truncated"
        return Verdict(False, count, problem, head_seq)
    if (head_seq or 0) != last_seq or head_hash != prev_hash:
        problem = f"entry {last_seq} does not match the chain head: altered, or appended outside the chain"
        return Verdict(False, count, problem, last_seq or None)
    return Verdict(True, count)
