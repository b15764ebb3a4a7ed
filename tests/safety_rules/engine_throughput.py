"""Synthetic throughput of the rules engine alone (no parsing): lab results per CPU second.

    .venv/bin/python -m tests.safety_rules.engine_throughput [hl7|rec] [records] [participants]

`hl7`: one record = one message of 10 results (WBC, ANC, neutrophil %, lymphocytes, platelets,
haemoglobin, ALT, AST, bilirubin, creatinine), 10 minutes apart, round-robin over the participants,
all dosed; values drawn around the normal range so some fire. `rec`: the same results, one per
record (NDJSON-shaped). Events are built before timing; the best of three runs is reported.
Not collected by pytest (no `test_` prefix).
"""

from __future__ import annotations

import gc
import random
import sys
import time
from datetime import timedelta
from decimal import Decimal

from services.safety_rules.domain import Engine, InMemoryStateStore, packaged_study
from shared.events import LabResultRecorded

from .factories import STUDY, T0, Record, dose

PANEL = [
    ("WBC", "10*9/L", 4, 11),
    ("NEUT", "10*9/L", 1.8, 7),
    ("NEUTLE", "%", 40, 70),
    ("LYM", "10*9/L", 1, 4),
    ("PLAT", "10*9/L", 150, 400),
    ("HGB", "g/L", 110, 160),
    ("ALT", "U/L", 10, 40),
    ("AST", "U/L", 10, 40),
    ("BILI", "umol/L", 3, 17),
    ("CREAT", "umol/L", 30, 80),
]


def _event(
    index: int, set_id: int, subject: str, row: tuple[str, str, float, float], rnd: random.Random, *, one: bool
) -> LabResultRecorded:
    test, unit, low, high = row
    value = Decimal(str(round(rnd.uniform(low * 0.6, high * 1.1), 2)))
    source = f"REC:{STUDY}:LB:{index}-{set_id}" if one else f"HL7:LAB:M{index}:{set_id}"
    at = T0 + timedelta(minutes=10 * index)
    return LabResultRecorded(
        event_id=source,
        study_id=STUDY,
        subject_id=subject,
        occurred_at=at,
        recorded_at=at,
        source=source,
        dedup_key=source if one else f"HL7:LAB:M{index}",
        test=test,  # type: ignore[arg-type]
        value=value,
        unit=unit,
        original_value=str(value),
        ref_low=Decimal(str(low)),
        ref_high=Decimal(str(high)),
        status="final",
        specimen_id=f"O{index}",
        result_key=f"LAB:O{index}:{test}",
    )


def build(records: int, participants: int, one_per_record: bool) -> list[Record]:
    """Synthetic records (see the module docstring)."""
    rnd = random.Random(1)
    out: list[Record] = []
    for index in range(records):
        subject = f"AD-{index % participants:03d}"
        events = [_event(index, k, subject, row, rnd, one=one_per_record) for k, row in enumerate(PANEL, start=1)]
        out.extend([[event] for event in events] if one_per_record else [list(events)])
    return out


def run(records: list[Record], participants: int) -> float:
    """CPU seconds to replay the records through a fresh engine (clock advanced before each)."""
    engine = Engine(packaged_study(), InMemoryStateStore())
    for index in range(participants):
        engine.process(dose(subject=f"AD-{index:03d}"))
    start = time.process_time()
    for record in records:
        engine.advance_clock(record[0].recorded_at)
        engine.process(record)
    return time.process_time() - start


def main(argv: list[str]) -> None:
    mode = argv[0] if argv else "hl7"
    count = int(argv[1]) if len(argv) > 1 else 10_000
    participants = int(argv[2]) if len(argv) > 2 else 8
    records = build(count if mode == "hl7" else count // len(PANEL), participants, mode == "rec")
    gc.collect()
    gc.freeze()
    best = min(run(records, participants) for _ in range(3))
    results = sum(len(record) for record in records)
    print(f"{mode}: {results} results in {len(records)} records: {results / best:,.0f} results/s (CPU)")


if __name__ == "__main__":
    main(sys.argv[1:])
