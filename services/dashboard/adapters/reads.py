"""Read-only SQL over the tables the other services write (ingest, safety_rules, notifier).

Nothing here writes. Each function is one query (or two) returning plain values or the domain's
dataclasses; aggregation that PostgreSQL does well (counts per participant) is done in SQL, so the
overview costs the same few queries for 8 or 1,000 participants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.dashboard.domain.endpoint import EndpointParticipant
from services.dashboard.domain.halting import EngineStudyState
from services.dashboard.domain.participants import ParticipantFacts
from services.dashboard.domain.timeline import LabPoint, TimelineEvent

#: The payload is stored as `json` text (migration 0005): json_to_record parses each row once for the three
#: fields (each `->>` would parse it again); OFFSET 0 keeps the subquery apart, so the sort by participant
#: carries those fields, not every payload.
PARTICIPANTS = text("""
SELECT subject_id,
  min(occurred) FILTER (WHERE kind = 'disposition' AND decision = 'ENROLLED') AS enrolled_at,
  min(occurred) FILTER (WHERE kind = 'dose' AND given) AS first_dose,
  count(DISTINCT (occurred AT TIME ZONE 'UTC')::date) FILTER (WHERE kind = 'dose' AND given) AS doses_given,
  count(DISTINCT (occurred AT TIME ZONE 'UTC')::date) FILTER (WHERE kind = 'dose' AND NOT given) AS doses_missed,
  max(occurred) FILTER (WHERE kind = 'disposition' AND decision = 'WITHDRAWN') AS withdrawn_at,
  max(occurred) FILTER (WHERE kind = 'disposition' AND decision = 'COMPLETED') AS completed_at
FROM (SELECT c.subject_id, c.kind, f.occurred_at AS occurred, f.given, f.decision
      FROM ingest.canonical_event AS c
      CROSS JOIN LATERAL json_to_record(c.payload) AS f(occurred_at timestamptz, given boolean, decision text)
      WHERE c.study_id = :study AND c.kind IN ('dose', 'disposition') AND c.subject_id IS NOT NULL
        AND c.recorded_at <= :cut
      OFFSET 0) AS e
GROUP BY subject_id
""")

LAST_DATA = text("""
SELECT subject_id, max(recorded_at) FROM ingest.canonical_event
WHERE study_id = :study AND subject_id IS NOT NULL AND recorded_at <= :cut GROUP BY subject_id
""")

OPEN_ALERTS = text("""
SELECT severity, count(*) FROM notifier.alert
WHERE study_id = :study AND state IN ('open', 'notified') GROUP BY severity
""")

STUDY_STATE = text("SELECT state FROM safety_rules.study_state WHERE study_id = :study")

DATA_CURRENCY = text("""
SELECT channel, format, max(received_at) AS last_at, count(*) AS records
FROM ingest.raw_input WHERE study_id = :study GROUP BY channel, format ORDER BY channel, format
""")

PAUSES = text("SELECT kind, at, rule_id FROM notifier.pause_event WHERE study_id = :study ORDER BY at, id")

SIGNALS_AFTER = text("""
SELECT seq, payload FROM safety_rules.signal WHERE study_id = :study AND seq > :after ORDER BY seq DESC LIMIT :limit
""")

BREACHES = text("""
SELECT payload FROM safety_rules.signal WHERE study_id = :study AND rule_id = 'CLOCK-BREACH' AND status = 'RAISED'
ORDER BY seq DESC LIMIT :limit
""")

SUBJECT_EVENTS = text("""
SELECT kind, (payload->>'occurred_at')::timestamptz AS occurred, payload FROM ingest.canonical_event
WHERE study_id = :study AND subject_id = :subject AND kind IN ('lab.result', 'adverse.event', 'injection.site', 'dose')
ORDER BY recorded_at, event_id
""")

SUBJECT_SIGNALS = text("""
SELECT payload FROM safety_rules.signal WHERE study_id = :study AND subject_id = :subject ORDER BY seq
""")

RULE_SIGNALS = text("""
SELECT subject_id, payload FROM safety_rules.signal
WHERE study_id = :study AND rule_id = :rule AND recorded_at <= :cut ORDER BY seq
""")

ALERTS = text("""
SELECT alert_id, subject_id, rule_id, severity, state, created_at, ack_due_at, acknowledged_by, acknowledged_at
FROM notifier.alert
WHERE study_id = :study AND (CAST(:severity AS text) IS NULL OR severity = :severity)
  AND (CAST(:state AS text) IS NULL OR state = :state)
ORDER BY created_at DESC, alert_id LIMIT :limit
""")

ALERT = text("""
SELECT alert_id, signal_id, subject_id, rule_id, severity, state, created_at, ack_due_at, acknowledged_by,
       acknowledged_at, ack_comment, resolved_at, resolved_by, resolution, payload
FROM notifier.alert WHERE alert_id = :alert
""")

QUARANTINE = text("""
SELECT id, received_at, channel, format, source, error FROM ingest.quarantine ORDER BY id DESC LIMIT :limit
""")

AUDIT = text("""
SELECT id, recorded_at, actor, action, detail FROM notifier.audit_log WHERE alert_id = :alert ORDER BY id
""")


@dataclass(frozen=True)
class Clock:
    rule_id: str
    subject_id: str
    ae_id: str
    day0: datetime
    due_at: datetime


async def participants(connection: AsyncConnection, study: str, cut: datetime) -> list[ParticipantFacts]:
    """Everyone with data up to ``cut``: exposure from doses and dispositions, currency from any event."""
    params = {"study": study, "cut": cut}
    last = {str(subject): at for subject, at in await connection.execute(LAST_DATA, params)}
    found = {str(row[0]): row for row in await connection.execute(PARTICIPANTS, params)}
    facts = []
    for subject in sorted(last):
        row = found.get(subject)
        if row is None:
            facts.append(ParticipantFacts(subject, None, None, 0, 0, None, None, last[subject]))
            continue
        _, enrolled, first_dose, given, missed, withdrawn, completed = row
        facts.append(
            ParticipantFacts(subject, enrolled, first_dose, given, missed, withdrawn, completed, last[subject])
        )
    return facts


async def open_alerts(connection: AsyncConnection, study: str) -> dict[str, int]:
    return {str(severity): int(count) for severity, count in (await connection.execute(OPEN_ALERTS, {"study": study}))}


async def study_state_json(connection: AsyncConnection, study: str) -> dict[str, Any] | None:
    state: dict[str, Any] | None = (await connection.execute(STUDY_STATE, {"study": study})).scalar_one_or_none()
    return state


async def study_state(connection: AsyncConnection, study: str) -> EngineStudyState:
    return EngineStudyState.from_json(await study_state_json(connection, study))


def clocks_of(state: dict[str, Any] | None) -> list[Clock]:
    """Open regulatory clocks the engine holds (SAFETY_RULES §5), soonest due first."""
    clocks = [
        Clock(
            c["rule_id"],
            c["subject_id"],
            c["ae_id"],
            datetime.fromisoformat(c["day0"]),
            datetime.fromisoformat(c["due_at"]),
        )
        for c in (state or {}).get("clocks", [])
    ]
    return sorted(clocks, key=lambda clock: clock.due_at)


async def breaches(connection: AsyncConnection, study: str, limit: int = 20) -> list[dict[str, Any]]:
    """Clocks that passed their due time without a submission (CLOCK-BREACH signals), newest first."""
    return [row[0] for row in await connection.execute(BREACHES, {"study": study, "limit": limit})]


async def data_currency(connection: AsyncConnection, study: str) -> list[dict[str, Any]]:
    return [dict(row._mapping) for row in await connection.execute(DATA_CURRENCY, {"study": study})]


async def pauses(connection: AsyncConnection, study: str) -> list[tuple[str, datetime, str | None]]:
    return [(str(kind), at, rule) for kind, at, rule in await connection.execute(PAUSES, {"study": study})]


async def signals_after(
    connection: AsyncConnection, study: str, after: int, limit: int = 50
) -> list[tuple[int, dict[str, Any]]]:
    rows = await connection.execute(SIGNALS_AFTER, {"study": study, "after": after, "limit": limit})
    return [(int(seq), payload) for seq, payload in rows]


def _lab_point(payload: dict[str, Any], at: datetime) -> LabPoint | None:
    if payload.get("value") is None or payload.get("status") not in ("final", "corrected"):
        return None
    low, high = payload.get("ref_low"), payload.get("ref_high")
    return LabPoint(
        payload["test"], at, float(payload["value"]), None if low is None else float(low),
        None if high is None else float(high), payload["status"],
    )  # fmt: skip


def _event(kind: str, at: datetime, payload: dict[str, Any]) -> TimelineEvent:
    if kind == "adverse.event":
        serious = any(payload.get("criteria", {}).values())
        label = (
            f"AE {payload.get('decod') or payload['term']} grade {payload.get('grade')}{' serious' if serious else ''}"
        )
        return TimelineEvent(at, "AE", "AE", label)
    if kind == "injection.site":
        found = ", ".join(name for name, present in sorted(payload.get("findings", {}).items()) if present)
        return TimelineEvent(at, "ISR", "ISR", f"injection site {payload.get('location') or ''}: {found or 'none'}")
    given = bool(payload.get("given"))
    return TimelineEvent(
        at, "doses", "dose" if given else "missed", f"dose {'given' if given else 'missed'} {at:%Y-%m-%d}"
    )


def _current_versions(rows: Sequence[Any]) -> list[tuple[str, datetime, dict[str, Any]]]:
    """The latest version of each result (result_key) and AE (ae_id), in ingestion order: a correction
    replaces, a deletion removes (SAFETY_RULES §6)."""
    latest: dict[str, tuple[str, datetime, dict[str, Any]]] = {}
    for kind, at, payload in rows:
        identity = payload.get("result_key") or payload.get("ae_id") or payload["event_id"]
        latest[f"{kind}|{identity}"] = (kind, at, payload)
    return sorted(latest.values(), key=lambda row: row[1])


async def subject_timeline(
    connection: AsyncConnection, study: str, subject: str
) -> tuple[list[LabPoint], list[TimelineEvent], list[dict[str, Any]]]:
    labs: list[LabPoint] = []
    events: list[TimelineEvent] = []
    rows = (await connection.execute(SUBJECT_EVENTS, {"study": study, "subject": subject})).all()
    for kind, at, payload in _current_versions(rows):
        if kind == "lab.result":
            point = _lab_point(payload, at)
            labs += [point] if point else []
        else:
            events.append(_event(kind, at, payload))
    signals = [row[0] for row in await connection.execute(SUBJECT_SIGNALS, {"study": study, "subject": subject})]
    for signal in signals:
        at = datetime.fromisoformat(signal["observed_at"].replace("Z", "+00:00"))
        events.append(
            TimelineEvent(at, "signals", "signal", f"{signal['rule_id']} {signal['severity']} {signal['status']}")
        )
    return labs, events, signals


async def endpoint_people(
    connection: AsyncConnection, study: str, rule_id: str, cut: datetime, facts: Sequence[ParticipantFacts]
) -> list[EndpointParticipant]:
    """Each participant with the onsets of their standing (raised, not retracted) endpoint signals."""
    raised: dict[str, tuple[str, datetime]] = {}
    retracted: set[str] = set()
    for subject, payload in await connection.execute(RULE_SIGNALS, {"study": study, "rule": rule_id, "cut": cut}):
        if payload["status"] == "RETRACTED":
            retracted.add(payload.get("retracts", ""))
        else:
            raised[payload["signal_id"]] = (
                subject,
                datetime.fromisoformat(payload["observed_at"].replace("Z", "+00:00")),
            )
    onsets: dict[str, list[datetime]] = {}
    for signal_id, (subject, at) in raised.items():
        if signal_id not in retracted:
            onsets.setdefault(subject, []).append(at)
    return [
        EndpointParticipant(
            f.subject_id, f.enrolled_at, f.first_dose, f.withdrawn_at, tuple(sorted(onsets.get(f.subject_id, [])))
        )
        for f in facts
    ]


async def alerts(
    connection: AsyncConnection, study: str, severity: str | None, state: str | None, limit: int = 200
) -> list[dict[str, Any]]:
    params = {"study": study, "severity": severity, "state": state, "limit": limit}
    return [dict(row._mapping) for row in await connection.execute(ALERTS, params)]


async def alert(connection: AsyncConnection, alert_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    row = (await connection.execute(ALERT, {"alert": alert_id})).first()
    if row is None:
        return None, []
    history = [dict(entry._mapping) for entry in await connection.execute(AUDIT, {"alert": alert_id})]
    return dict(row._mapping), history


async def quarantine(connection: AsyncConnection, limit: int = 50) -> list[dict[str, Any]]:
    """The newest rejected records (identifiers already blanked by ingest), for the admin."""
    return [dict(row._mapping) for row in await connection.execute(QUARANTINE, {"limit": limit})]
