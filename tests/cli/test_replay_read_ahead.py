"""`trialwatch replay` parses records ahead in runs of PARSE_AHEAD: every result still comes, once, in order."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.ingest.domain import ParseResult, Rejected
from trialwatch.replay import PARSE_AHEAD, _read_ahead


@pytest.mark.parametrize("count", [0, 1, PARSE_AHEAD - 1, PARSE_AHEAD, PARSE_AHEAD + 1, 2 * PARSE_AHEAD + 7])
def test_every_result_once_in_input_order(count: int) -> None:
    results: list[ParseResult] = [Rejected(f"in:{line}", "error") for line in range(1, count + 1)]
    runs = list(_read_ahead(iter(results)))
    assert [result.source for run in runs for result in run] == [f"in:{n}" for n in range(1, count + 1)]
    assert all(0 < len(run) <= PARSE_AHEAD for run in runs)


def test_results_are_read_a_run_at_a_time_not_all_at_once() -> None:
    pulled: list[int] = []

    def results() -> Iterator[ParseResult]:
        for line in range(1, 3 * PARSE_AHEAD + 1):
            pulled.append(line)
            yield Rejected(f"in:{line}", "error")

    ahead = _read_ahead(results())
    assert len(next(ahead)) == PARSE_AHEAD
    assert len(pulled) == PARSE_AHEAD  # one run parsed, not the whole input (memory stays bounded)
