"""Inputs and expectations of the live tests: hand-written files, parsed by the real parsers.

`ingested` turns files into the `RecordIngested` messages ingest would publish (one per accepted
record); `replay_groups` is `trialwatch replay`'s composition kept per record, because the engine may
order the signals of one record differently from run to run (INTERFACES §4: "the signals of one
record in any order"); `assert_like_replay` compares an output with those groups.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import orjson

from safety_rules_service.store_contract import INPUTS, SAMPLES, replay_step
from services.ingest.domain import Parsed, ParserConfig, parse_stream
from services.safety_rules.domain import Engine, InMemoryStateStore, packaged_study
from shared.events import ClinicalEvent, RecordIngested, deterministic_id

STUDY = "ANAKINRA-AD"
BREACH = b'"rule_id":"CLOCK-BREACH"'
SAMPLE_FILES = tuple(INPUTS / name for name in SAMPLES)


def parsed_records(paths: Sequence[Path]) -> Iterator[Sequence[ClinicalEvent]]:
    """The events of every accepted, gradable record, in input order (as `trialwatch replay` reads them)."""
    config = ParserConfig(study_ids=frozenset({STUDY}), default_study_id=STUDY)
    for path in paths:
        with path.open("rb") as stream:
            for result in parse_stream(stream, config, name=str(path)):
                if isinstance(result, Parsed) and result.events and not result.non_production:
                    yield cast(Sequence[ClinicalEvent], result.events)


def ingested(paths: Sequence[Path]) -> list[RecordIngested]:
    now = datetime.now(UTC)
    return [
        RecordIngested(
            record_id=deterministic_id("record", events[0].dedup_key),
            dedup_key=events[0].dedup_key,
            study_id=events[0].study_id,
            received_at=now,
            channel="file",
            events=list(events),
        )
        for events in parsed_records(paths)
    ]


def wire(records: Sequence[RecordIngested]) -> list[bytes]:
    return [record.model_dump_json().encode() for record in records]


def replay_groups(paths: Sequence[Path]) -> list[set[bytes]]:
    """Per record, the NDJSON lines replay prints for it (CLOCK-BREACH aside); records without any left out."""
    engine = Engine(packaged_study(), InMemoryStateStore())
    groups = [{orjson.dumps(s.to_public()) for s in replay_step(engine, events)} for events in parsed_records(paths)]
    return [kept for kept in ({line for line in group if BREACH not in line} for group in groups) if kept]


def breaches(lines: Sequence[bytes]) -> set[bytes]:
    return {line for line in lines if BREACH in line}


def assert_like_replay(lines: Sequence[bytes], groups: Sequence[set[bytes]]) -> None:
    """``lines`` hold exactly the groups' signals, record after record (any order within a record)."""
    rest = [line for line in lines if BREACH not in line]
    assert len(rest) == sum(map(len, groups)), f"{len(rest)} signals, expected {sum(map(len, groups))}"
    start = 0
    for number, group in enumerate(groups):
        chunk = set(rest[start : start + len(group)])
        assert chunk == group, f"record #{number}: {sorted(chunk ^ group)[:4]}"
        start += len(group)


def write_ndjson(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


class _Stream:
    """Records of many participants whose halting counts and corrections depend on their order."""

    def __init__(self, start: datetime) -> None:
        self.rows: list[dict[str, Any]] = []
        self.clock = start

    def at(self, hours: float = 1.0) -> str:
        self.clock += timedelta(hours=hours)
        return self.clock.strftime("%Y-%m-%dT%H:%M:%S")

    def add(self, domain: str, subject: str | None, recid: str, **fields: Any) -> None:
        row = {"DOMAIN": domain, "STUDYID": STUDY, "RECID": recid, **fields}
        self.rows.append(row | ({"USUBJID": subject} if subject else {}))

    def labs(self, i: int, s: str) -> None:
        anc = ["0.4", "0.8", "1.2", "1.7", "2.5", "<0.5", "abc"][i % 7]
        lab = {"LBTESTCD": "NEUT", "LBORRES": anc, "LBORRESU": "10^9/L", "LBORNRLO": "1.8", "LBORNRHI": "8.0"}
        lab["LBREFID"] = f"SPC-{s}-1"
        self.add("LB", s, f"LB-{s}-1", LBDTC=self.at(), **lab)
        if i % 3 == 0:
            self.add("LB", s, f"LB-{s}-1C", LBDTC=self.at(0), **{**lab, "LBORRES": "0.9", "LBSTAT": "C"})
        if i % 6 == 1:
            self.add("VS", s, f"VS-{s}-1", VSTESTCD="TEMP", VSORRES="38.6", VSORRESU="C", VSDTC=self.at(0.5))
        if i % 7 == 2:
            plat = {"LBTESTCD": "PLAT", "LBORRES": "30", "LBORRESU": "10^9/L", "LBORNRLO": "150", "LBORNRHI": "450"}
            self.add("LB", s, f"LB-{s}-P", LBDTC=self.at(), **plat)
        if i % 5 == 3:
            self.add("LB", s, f"LB-{s}-1D", LBDTC=self.at(0), **{**lab, "LBSTAT": "D"})

    def adverse_events(self, i: int, s: str) -> None:
        if i % 4 == 1:
            infection = {"AETERM": "pneumonia", "AEDECOD": "Lung infection", "AESOC": "Infections and infestations"}
            serious = {"AETOXGR": "3", "AESER": "Y", "AESHOSP": "Y", "AEREL": "POSSIBLY RELATED"}
            self.add("AE", s, f"AE-{s}-1", AESTDTC=self.at()[:10], **infection, **serious)
            if i % 8 == 1:
                self.add("REG", s, f"REG-{s}-1", REGCLOCK="SPONSOR-24H", REGAEREF=f"AE-{s}-1", REGDTC=self.at(2))
        if i % 9 == 4:
            anaphylaxis = {"AETERM": "anaphylaxis", "AEDECOD": "Anaphylaxis", "AETOXGR": "3", "AESER": "Y"}
            self.add("AE", s, f"AE-{s}-2", AESLIFE="Y", AEREL="PROBABLY RELATED", AESTDTC=self.at()[:10], **anaphylaxis)
        if i % 10 == 9:
            self.add("DSMB", None, f"DSMB-{i}", DSMBDEC="RESUME", DSMBDTC=self.at()[:10])


def trial_stream(subjects: int, start: datetime = datetime(2026, 2, 1, 8, tzinfo=UTC)) -> list[dict[str, Any]]:
    """Enrolment and first dose of every participant, then labs, AEs, corrections, deletions and DSMB resumes."""
    stream = _Stream(start)
    ids = [f"AD-{500 + i}" for i in range(subjects)]
    for s in ids:
        stream.add("DS", s, f"DS-{s}", DSDECOD="ENROLLED", DSSTDTC=stream.at(0.5))
        stream.add("EX", s, f"EX-{s}-1", EXOCCUR="Y", EXDOSE=60, EXDOSU="mg", EXSTDTC=stream.at(0.5))
    for i, s in enumerate(ids):
        stream.labs(i, s)
        stream.adverse_events(i, s)
    return stream.rows
