"""The notifier's background loops (senders, scheduler, metrics): each repeats one step, sleeps when the
step found nothing to do (until woken, until its next known due time, or at most ``interval``), and backs
off while the database is away.

A failed step is not swallowed: it is counted and kept as ``last_error`` (``/healthz`` reports a loop that
keeps failing), and the work it was doing stays in PostgreSQL to be picked up by the next step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from shared.logs import get_logger
from shared.messaging.retry import Backoff

FAILURES_UNHEALTHY = 3
STOP_TIMEOUT = 10.0
#: The shortest sleep after a step that found nothing: a row due but locked by another transaction must not spin.
MIN_PAUSE = 0.05

log = get_logger(__name__)


@dataclass
class Loop:
    name: str
    step: Callable[[], Awaitable[int]]
    interval: float
    #: Seconds until the step has work again as far as it knows (None: unknown); the loop then sleeps that
    #: long rather than ``interval``, or until woken (by this process's commits, see bootstrap).
    until_due: Callable[[], float | None] = lambda: None
    backoff: Backoff = field(default_factory=lambda: Backoff(first=0.5, cap=30.0))
    consecutive_failures: int = 0
    last_error: str | None = None
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"notifier-{self.name}")

    async def stop(self) -> None:
        """Lets the current step finish (up to STOP_TIMEOUT); a step cut short leaves its deliveries leased,
        and they are claimed again once the lease runs out (or, past the point of no return, settled as
        unconfirmed: sender.py)."""
        self._stopped.set()
        self._wake.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(self._task, timeout=STOP_TIMEOUT)
        except TimeoutError:
            log.warning("loop.stop_timed_out", loop=self.name, seconds=STOP_TIMEOUT)

    def health(self) -> str:
        if self._task is None or self._task.done():
            return "stopped"
        return f"failing: {self.last_error}" if self.consecutive_failures >= FAILURES_UNHEALTHY else "ok"

    async def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                done = await self.step()
            except Exception as exc:  # the work stays in PostgreSQL; retried after a growing pause
                self.consecutive_failures += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("loop.failed", loop=self.name, error=self.last_error, failures=self.consecutive_failures)
                await self._pause(self.backoff.delay(self.consecutive_failures))
                continue
            self.consecutive_failures, self.last_error = 0, None
            if not done:
                due_in = self.until_due()
                await self._pause(self.interval if due_in is None else min(self.interval, max(due_in, MIN_PAUSE)))

    async def _pause(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            return
        self._wake.clear()


class Coalesced:
    """Calls ``action`` ``delay`` seconds after the first call since it last ran: a burst of calls (a commit
    each) becomes one."""

    def __init__(self, action: Callable[[], None], delay: float) -> None:
        self._action = action
        self._delay = delay
        self._pending: asyncio.TimerHandle | None = None

    def __call__(self) -> None:
        if self._pending is None:
            self._pending = asyncio.get_running_loop().call_later(self._delay, self._run)

    def _run(self) -> None:
        self._pending = None
        self._action()
