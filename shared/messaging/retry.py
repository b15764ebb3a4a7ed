"""Bounded exponential backoff: every retry loop in TrialWatch waits, none spins."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    first: float = 0.2
    cap: float = 5.0
    factor: float = 2.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.cap, self.first * self.factor ** max(0, attempt - 1))


@dataclass(frozen=True)
class RetryPolicy:
    """How often a consumer retries one message before it gives up on it."""

    max_attempts: int = 5
    backoff: Backoff = Backoff()
