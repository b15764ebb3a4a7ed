"""`trialwatch replay` runs with the cycle collector off (`replay._no_cycle_collection`): that is safe only while
everything it allocates is freed by reference counting. Replaying the hand-written corpus (every format,
rejections, corrections, retractions, clocks, halting) and a generated stream of both formats leaves no cyclic
garbage for the collector to find."""

from __future__ import annotations

import gc
import io
from datetime import timedelta
from pathlib import Path

from bench.generate import START, Generator
from services.safety_rules.domain import packaged_study
from trialwatch.replay import replay

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"


def _generated() -> list[tuple[str, io.BytesIO]]:
    generator = Generator(seed=3, participants=20, span_days=30)
    records, labs = io.BytesIO(), io.BytesIO()
    generator.ndjson(records, START, timedelta(days=30), 1_500, first_doses=True)
    generator.labs(labs, START, timedelta(days=30), 500)
    return [("records.ndjson", io.BytesIO(records.getvalue())), ("labs.hl7", io.BytesIO(labs.getvalue()))]


def test_replay_leaves_no_cyclic_garbage() -> None:
    study = packaged_study()
    inputs = [(path.name, io.BytesIO(path.read_bytes())) for path in sorted(CORPUS.iterdir())]
    inputs += [*_generated(), ("broken.ndjson", io.BytesIO(b'{"DOMAIN": "XX"}\nnot json\n{"DOMAIN": "AE"}\n'))]
    stdout, stderr = io.BytesIO(), io.BytesIO()
    gc.collect()
    gc.disable()
    try:
        replay(inputs, study, stdout, stderr)
        assert not gc.isenabled()  # replay restores the collector's state as it found it
        unreachable = gc.collect()
    finally:
        gc.enable()
    assert stdout.getvalue().count(b"\n") > 50  # signals of every kind were built
    assert b"not valid JSON" in stderr.getvalue()  # and rejections
    assert unreachable == 0
