"""Deterministic synthetic input stream for the replay benchmark (issue #3), streamed to disk.

    python -m bench.generate [--dir out/bench-data] [--records 200000] [--participants 500] [--seed 3] [--small]

Writes `labs-NNN.hl7` (about 60 % of the records: HL7 ORU^R01 messages) and `records-NNN.ndjson` (40 %: AE, EX,
ISR, VS records) in time shards, then `manifest.json` with the counts and the replay order of the files
(records-000, labs-000, records-001, ...). records-000 opens with each participant's first dose. About 1 % of the
records are exact re-sends, 0.5 % corrections (HL7 OBX-11 C with the same OBR-3; the same RECID with new
content), and a few per cent carry results that fire a rule. Memory stays bounded: only the last few records
are kept, to be re-sent or corrected.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from bench.hl7_gen import STUDY_ID, LabMessage, corrected, make_participants, new_message, render
from bench.ndjson_gen import DOMAIN_WEIGHTS, DOMAINS, Record, RecordMaker

DEFAULT_DIR = Path("out/bench-data")
DEFAULT_RECORDS = 200_000
SMALL_RECORDS = 10_000
HL7_SHARE = 0.6
DUPLICATE_RATE = 0.01
CORRECTION_RATE = 0.005
HL7_FIRE_RATE = 0.03  # messages with one result that fires a lab rule
START = datetime(2026, 1, 5, tzinfo=UTC)
MANIFEST = "manifest.json"
_RING = 64


class Ring:
    """The last few items written: what a duplicate re-sends and a correction corrects."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.position = 0

    def add(self, item: Any) -> int:
        if len(self.items) < _RING:
            self.items.append(item)
            return len(self.items) - 1
        self.position = (self.position + 1) % _RING
        self.items[self.position] = item
        return self.position


def _correctable(rng: random.Random, calm: Ring, hot: Ring) -> Ring:
    """Half the corrections undo a result that fired (a retraction), half correct an ordinary one."""
    return hot if hot.items and rng.random() < 0.5 else calm


def _moment(start: datetime, window: timedelta, index: int, count: int, rng: random.Random) -> datetime:
    return start + window * ((index + rng.random()) / count)


class Generator:
    def __init__(self, seed: int, participants: int, span_days: int) -> None:
        self.rng = random.Random(seed)
        self.people = make_participants(self.rng, participants, START)
        self.records = RecordMaker(self.rng, self.people)
        self.counts: Counter[str] = Counter()
        self.span = timedelta(days=span_days)
        self.message_number = 0

    def labs(self, out: BinaryIO, start: datetime, window: timedelta, count: int) -> None:
        rng, sent, calm, hot = self.rng, Ring(), Ring(), Ring()
        for index in range(count):
            moment = _moment(start, window, index, count, rng)
            roll = rng.random()
            self.message_number += 1
            message: LabMessage
            if roll < DUPLICATE_RATE and sent.items:
                message = rng.choice(sent.items)
                self.counts["hl7_duplicates"] += 1
            elif roll < DUPLICATE_RATE + CORRECTION_RATE and calm.items:
                pool = _correctable(rng, calm, hot)
                slot = rng.randrange(len(pool.items))
                message = pool.items[slot] = corrected(rng, pool.items[slot], self.message_number, moment)
                self.counts["hl7_corrections"] += 1
            else:
                fire = rng.random() < HL7_FIRE_RATE
                message = new_message(rng, rng.choice(self.people), self.message_number, moment, fire)
                (hot if fire else calm).add(message)
                self.counts["hl7_firing"] += fire
            sent.add(message)
            self.counts["hl7_messages"] += 1
            self.counts["obx"] += len(message.results)
            out.write(render(message))

    def ndjson(self, out: BinaryIO, start: datetime, window: timedelta, count: int, first_doses: bool) -> None:
        rng, maker, lines, calm, hot = self.rng, self.records, Ring(), Ring(), Ring()
        if first_doses:
            for number, subject in enumerate(self.people):
                dosed = START + timedelta(days=1, hours=8, minutes=number % 480)
                self._write(out, maker.dose(subject, dosed, given=True), lines)
            count -= len(self.people)
            start, window = start + timedelta(days=2), window - timedelta(days=2)
        for index in range(count):
            moment = _moment(start, window, index, count, rng)
            roll = rng.random()
            if roll < DUPLICATE_RATE and lines.items:
                out.write(rng.choice(lines.items))
                self.counts["ndjson_duplicates"] += 1
                self.counts["ndjson_records"] += 1
            elif roll < DUPLICATE_RATE + CORRECTION_RATE and calm.items:
                pool = _correctable(rng, calm, hot)
                slot = rng.randrange(len(pool.items))
                pool.items[slot] = maker.correct(pool.items[slot])
                self._write(out, pool.items[slot], lines)
                self.counts["ndjson_corrections"] += 1
            else:
                domain = rng.choices(DOMAINS, DOMAIN_WEIGHTS)[0]
                firing = maker.firing
                record = maker.make(domain, rng.choice(self.people), moment)
                self._write(out, record, lines)
                if domain != "EX":
                    (hot if maker.firing > firing else calm).add(record)

    def _write(self, out: BinaryIO, record: Record, lines: Ring) -> None:
        line = json.dumps(record).encode() + b"\n"
        out.write(line)
        lines.add(line)
        self.counts["ndjson_records"] += 1
        self.counts["ndjson_" + record["DOMAIN"]] += 1


def generate(
    directory: Path, *, records: int, participants: int = 500, seed: int = 3, shards: int = 4, span_days: int = 120
) -> dict[str, Any]:
    """Write the stream into `directory` and return (and write) its manifest."""
    hl7_total = round(records * HL7_SHARE)
    ndjson_total = records - hl7_total
    if ndjson_total < participants * 2:
        raise ValueError(f"{records} records are too few for {participants} participants")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MANIFEST).unlink(missing_ok=True)
    generator = Generator(seed, participants, span_days)
    window = generator.span / shards
    files: list[dict[str, Any]] = []
    for shard in range(shards):
        start = START + window * shard
        share = (ndjson_total * (shard + 1) // shards) - (ndjson_total * shard // shards)
        path = directory / f"records-{shard:03d}.ndjson"
        with path.open("wb", buffering=1 << 20) as out:
            generator.ndjson(out, start, window, share, first_doses=shard == 0)
        files.append({"name": path.name, "format": "ndjson", "records": share, "bytes": path.stat().st_size})
        share = (hl7_total * (shard + 1) // shards) - (hl7_total * shard // shards)
        path = directory / f"labs-{shard:03d}.hl7"
        with path.open("wb", buffering=1 << 20) as out:
            generator.labs(out, start, window, share)
        files.append({"name": path.name, "format": "hl7", "records": share, "bytes": path.stat().st_size})
    counts = dict(sorted(generator.counts.items()))
    counts["ndjson_firing"] = generator.records.firing
    manifest = {
        "generator": "bench.generate",
        "version": 1,
        "study_id": STUDY_ID,
        "seed": seed,
        "records": records,
        "participants": participants,
        "shards": shards,
        "span_days": span_days,
        "start": START.isoformat().replace("+00:00", "Z"),
        "files": files,
        "counts": counts,
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def load_manifest(directory: Path) -> dict[str, Any] | None:
    path = directory / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="output directory (default %(default)s)")
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS, help="total records (default %(default)s)")
    parser.add_argument("--participants", type=int, default=500)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--shards", type=int, default=4, help="files per format (default %(default)s)")
    parser.add_argument("--small", action="store_true", help=f"a quick check: {SMALL_RECORDS} records")
    args = parser.parse_args(argv)
    records = SMALL_RECORDS if args.small else args.records
    manifest = generate(args.dir, records=records, participants=args.participants, seed=args.seed, shards=args.shards)
    total = sum(item["bytes"] for item in manifest["files"])
    print(f"{args.dir}: {records} records, {total / 1e6:.1f} MB")
    print(json.dumps(manifest["counts"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
