"""A synthetic study written straight into the tables the dashboard reads: N participants x D days.

Per participant: enrolment 60 days before the first dose, a daily dose for 90 days (every 11th missed),
a weekly CBC and liver panel (NEUT, PLAT, HGB, ALT, AST) over the whole period, an AE every 45 days and
a signal for every 10th lab; the study state counts two H-SI participants. Deterministic (no randomness).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

STUDY = "ANAKINRA-AD"
START = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
LABS = {
    "NEUT": ("3.1", "1.8", "8.0", "10*9/L"),
    "PLAT": ("250", "150", "450", "10*9/L"),
    "HGB": ("130", "115", "155", "g/L"),
    "ALT": ("22", None, "40", "U/L"),
    "AST": ("25", None, "40", "U/L"),
}


def _id(*parts: object) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()


def _event(
    subject: str, kind: str, at: datetime, key: str, **fields: Any
) -> tuple[str, str, str, dict[str, Any], datetime]:
    event_id = _id(subject, kind, key)
    payload = {
        "event_id": event_id,
        "kind": kind,
        "schema_version": 1,
        "study_id": STUDY,
        "subject_id": subject,
        "occurred_at": at.isoformat().replace("+00:00", "Z"),
        "recorded_at": at.isoformat().replace("+00:00", "Z"),
        "source": f"REC:{STUDY}:{kind}:{key}",
        "dedup_key": f"REC:{STUDY}:{kind}:{key}",
        **fields,
    }
    return event_id, payload["dedup_key"], kind, payload, at


def participant_events(index: int, days: int) -> Iterator[tuple[str, str, str, dict[str, Any], datetime]]:
    subject = f"SYN-{index:04d}"
    first_dose = START + timedelta(days=60 + index % 30)
    yield _event(subject, "disposition", first_dose - timedelta(days=60), f"{subject}-DS", decision="ENROLLED")
    for day in range(min(days, 90)):
        at = first_dose + timedelta(days=day)
        yield _event(subject, "dose", at, f"{subject}-EX-{day}", given=day % 11 != 5, dose="3", dose_unit="mg/kg")
    for week in range(days // 7):
        at = first_dose - timedelta(days=60) + timedelta(days=7 * week)
        for test, (value, low, high, unit) in LABS.items():
            key = f"{subject}-{test}-{week}"
            yield _event(
                subject,
                "lab.result",
                at,
                key,
                test=test,
                value=value,
                unit=unit,
                ref_low=low,
                ref_high=high,
                status="final",
                original_value=value,
                specimen_id=f"{subject}-{week}",
                result_key=key,
            )
    for n in range(days // 45):
        at = first_dose + timedelta(days=45 * n)
        yield _event(
            subject,
            "adverse.event",
            at,
            f"{subject}-AE-{n}",
            ae_id=f"{subject}-AE-{n}",
            term="Headache",
            grade=1 + n % 3,
            criteria={},
        )


def signal_rows(index: int, days: int) -> Iterator[tuple[str, str, str, str, str, str, str]]:
    subject = f"SYN-{index:04d}"
    for week in range(0, days // 7, 10):
        signal_id = _id(subject, "signal", week)
        at = (START + timedelta(days=7 * week)).isoformat().replace("+00:00", "Z")
        payload = {
            "signal_id": signal_id,
            "study_id": STUDY,
            "subject_id": subject,
            "rule_id": "LAB-ANC-2",
            "severity": "NOTIFY",
            "action": "REPEAT_LAB",
            "status": "RAISED",
            "observed_at": at,
            "evidence": [],
            "detail": {"grade": 2},
        }
        yield signal_id, STUDY, subject, "LAB-ANC-2", "NOTIFY", "RAISED", json.dumps(payload)


async def load(database_url: str, participants: int, days: int) -> int:
    """Writes the study; returns the number of canonical events."""
    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(
            "TRUNCATE ingest.canonical_event, ingest.raw_input, safety_rules.signal, safety_rules.study_state"
        )
        events = [row for i in range(participants) for row in participant_events(i, days)]
        await connection.copy_records_to_table(
            "canonical_event",
            schema_name="ingest",
            columns=("event_id", "dedup_key", "kind", "payload", "recorded_at", "study_id", "subject_id"),
            records=[(e, d, k, json.dumps(p), at, STUDY, p["subject_id"]) for e, d, k, p, at in events],
        )
        await connection.copy_records_to_table(
            "raw_input",
            schema_name="ingest",
            columns=(
                "source_key",
                "format",
                "received_at",
                "sha256",
                "payload",
                "study_id",
                "channel",
                "origin",
                "non_production",
                "event_count",
            ),
            records=[(d, "records", at, "0" * 64, "{}", STUDY, "http", "bench", False, 1) for _, d, _, _, at in events],
        )
        signals = [row for i in range(participants) for row in signal_rows(i, days)]
        await connection.executemany(
            "INSERT INTO safety_rules.signal (signal_id, study_id, subject_id, rule_id, severity, status, payload) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7::json)",
            signals,
        )
        state = {
            "study_id": STUDY,
            "dosed": [f"SYN-{i:04d}" for i in range(participants)],
            "counted": [["H-SI", [["SYN-0000", []], ["SYN-0001", []]]]],
            "latched": ["H-SI"],
            "clocks": [],
            "submissions": [],
        }
        await connection.execute(
            "INSERT INTO safety_rules.study_state (study_id, state) VALUES ($1, $2::jsonb)", STUDY, json.dumps(state)
        )
        await connection.execute("ANALYZE")
        return len(events)
    finally:
        await connection.close()
