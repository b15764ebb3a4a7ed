"""Structured, one-line-per-step output: ``[stack] component  message  (elapsed)``."""

from __future__ import annotations

import sys
import time


class DevstackError(RuntimeError):
    """A step failed; the message says what to look at."""


def say(stack: str, component: str, message: str, elapsed: float | None = None) -> None:
    timing = f"  ({elapsed:.1f}s)" if elapsed is not None else ""
    print(f"[{stack}] {component:<12} {message}{timing}", flush=True)


def warn(stack: str, component: str, message: str) -> None:
    print(f"[{stack}] {component:<12} WARNING: {message}", file=sys.stderr, flush=True)


class Timer:
    def __init__(self) -> None:
        self.start = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start
