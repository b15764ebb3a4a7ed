"""Participant states kept in memory between batches, each valid only while its row is the one written.

Reading a participant's JSONB row and rebuilding its state (``ParticipantState.from_json``) took about a
fifth of a batch's time, for a state the service itself wrote one batch earlier. The cache keeps the
state objects it wrote together with the row's ``xmin`` (the id of the transaction that wrote the row,
which PostgreSQL changes on every write of the row). A batch reads only the ``xmin`` of its participants'
rows and uses a cached state whose ``xmin`` is still the row's: any other writer (a second instance after
a rebalance, the wall-clock task, a restore) changes it, so the row is read again. The engine changes
states in place, so a batch that fails must `clear` the cache (its objects may hold uncommitted changes).
Least recently used states are dropped beyond ``max_participants``, which bounds the memory it takes.
"""

from __future__ import annotations

from collections import OrderedDict

from services.safety_rules.adapters.participant_rows import Written
from services.safety_rules.domain import ParticipantState

Key = tuple[str, str]
Cached = tuple[ParticipantState, Written]


class ParticipantCache:
    def __init__(self, max_participants: int) -> None:
        self._max = max_participants
        self._states: OrderedDict[Key, tuple[str, ParticipantState, Written]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    def take(self, key: Key, row_xmin: str) -> Cached | None:
        """The cached state of ``key`` and what its result rows hold, if it is the row whose ``xmin`` is
        ``row_xmin``; the entry leaves the cache either way (the batch now owns the object and puts it back
        when it wrote it)."""
        cached = self._states.pop(key, None)
        if cached is None or cached[0] != row_xmin:
            return None
        return cached[1], cached[2]

    def put(self, key: Key, row_xmin: str, state: ParticipantState, written: Written) -> None:
        """``state`` is what the row written with ``row_xmin`` holds (committed with it), ``written`` what
        its result rows hold (written in the same transaction)."""
        self._states[key] = (row_xmin, state, written)
        self._states.move_to_end(key)
        while len(self._states) > self._max:
            self._states.popitem(last=False)

    def clear(self) -> None:
        self._states.clear()
