"""The run's summary, built only from PostgreSQL (signals, alerts, deliveries, quarantine, study state) and
the SMTP sink's stored messages — what the system did, not what the simulator meant to happen.

`out/demo-summary.json`: {"signals": [INTERFACES §3 objects], "alerts": [one row per delivery and alert],
"rejected_records": N, "halting": [{"rule_id", "count", "boundary", "posterior", "latched"}]}.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

HALTING_RULES = ("H-DEATH", "H-ANA", "H-SI", "H-NEUT", "H-RSAE")
SIGNALS = "SELECT payload FROM safety_rules.signal WHERE study_id = :study ORDER BY seq"
DELIVERIES = """
SELECT d.id, d.alert_ids, d.channel, d.recipient, d.status, d.sent_at, d.message_id AS sent_id,
       m.message_id AS stored_id
FROM notifier.delivery d LEFT JOIN smtp_sink.message m ON m.message_id = d.message_id
ORDER BY d.id
"""
ALERTS = "SELECT alert_id, signal_id, rule_id, severity, acknowledged_at FROM notifier.alert WHERE study_id = :study"
STUDY_STATE = "SELECT state FROM safety_rules.study_state WHERE study_id = :study"


def _iso(moment: datetime | None) -> str | None:
    """ISO 8601 UTC with Z, as every time TrialWatch shows (INTERFACES §3)."""
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def _rows(engine: AsyncEngine, sql: str, **params: object) -> list[Any]:
    async with engine.connect() as connection:
        return list((await connection.execute(text(sql), params)).all())


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


async def alert_rows(engine: AsyncEngine, study_id: str) -> list[dict[str, Any]]:
    alerts = {row.alert_id: row for row in await _rows(engine, ALERTS, study=study_id)}
    rows: list[dict[str, Any]] = []
    for delivery in await _rows(engine, DELIVERIES):
        for alert_id in _json(delivery.alert_ids):
            alert = alerts.get(alert_id)
            if alert is None:
                continue
            status = delivery.status
            if status == "DELIVERED" and alert.acknowledged_at is not None:
                status = "ACKNOWLEDGED"
            message_id = delivery.stored_id if delivery.channel == "email" else delivery.sent_id
            rows.append(
                {
                    "alert_id": alert_id,
                    "signal_id": alert.signal_id,
                    "rule_id": alert.rule_id,
                    "severity": alert.severity,
                    "channel": delivery.channel,
                    "recipient": delivery.recipient,
                    "status": status,
                    "delivered_at": _iso(delivery.sent_at),
                    "message_id": message_id,
                }
            )
    return rows


async def halting_rows(engine: AsyncEngine, study_id: str, signals: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = await _rows(engine, STUDY_STATE, study=study_id)
    state = _json(found[0].state) if found else {"counted": [], "latched": []}
    counted = {rule: len(subjects) for rule, subjects in state["counted"]}
    rows = []
    for rule in HALTING_RULES:
        fired = [s for s in signals if s["rule_id"] == rule and s["status"] == "RAISED"]
        detail = fired[-1]["detail"] if fired else {}
        rows.append(
            {
                "rule_id": rule,
                "count": counted.get(rule, 0),
                "boundary": detail.get("boundary"),
                "posterior": detail.get("posterior"),
                "latched": rule in state["latched"],
            }
        )
    return rows


async def build_summary(engine: AsyncEngine, study_id: str) -> dict[str, Any]:
    signals = [_json(row.payload) for row in await _rows(engine, SIGNALS, study=study_id)]
    async with engine.connect() as connection:
        rejected = int((await connection.execute(text("SELECT count(*) FROM ingest.quarantine"))).scalar_one())
    return {
        "signals": signals,
        "alerts": await alert_rows(engine, study_id),
        "rejected_records": rejected,
        "halting": await halting_rows(engine, study_id, signals),
    }


def write_summary(summary: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")


def print_summary(summary: dict[str, Any], console: Console) -> None:
    console.print(signals_table(summary))
    console.print(alerts_table(summary))
    urgent = [s for s in summary["signals"] if s["severity"] in ("URGENT", "HALT")]
    mailed = {
        row["signal_id"]
        for row in summary["alerts"]
        if row["channel"] == "email" and row["message_id"] and row["status"] in ("DELIVERED", "ACKNOWLEDGED")
    }
    console.print(
        f"URGENT and HALT signals with an e-mail delivered to the sink: "
        f"{sum(1 for s in urgent if s['signal_id'] in mailed)} of {len(urgent)}"
    )
    console.print(halting_table(summary))
    console.print(f"Rejected records (quarantined with a reason): {summary['rejected_records']}")


def signals_table(summary: dict[str, Any]) -> Table:
    signals = Table(title="Signals by rule", title_justify="left")
    for column in ("rule", "severity", "raised", "retracted", "participants"):
        signals.add_column(column)
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for signal in summary["signals"]:
        by_rule.setdefault(signal["rule_id"], []).append(signal)
    for rule, items in by_rule.items():
        status = Counter(item["status"] for item in items)
        subjects = sorted({item["subject_id"] for item in items if item["subject_id"]})
        signals.add_row(
            rule, items[0]["severity"], str(status["RAISED"]), str(status["RETRACTED"]), ", ".join(subjects) or "study"
        )
    return signals


def alerts_table(summary: dict[str, Any]) -> Table:
    alerts = Table(title="Alerts (one row per severity and channel)", title_justify="left")
    for column in ("severity", "channel", "deliveries", "delivered", "acked", "pending", "failed"):
        alerts.add_column(column)
    groups: dict[tuple[str, str], Counter[str]] = {}
    for row in summary["alerts"]:
        groups.setdefault((row["severity"], row["channel"]), Counter())[row["status"]] += 1
    for (severity, channel), status in sorted(groups.items()):
        total = sum(status.values())
        alerts.add_row(
            severity,
            channel,
            str(total),
            str(status["DELIVERED"] + status["ACKNOWLEDGED"]),
            str(status["ACKNOWLEDGED"]),
            str(status["PENDING"]),
            str(status["FAILED"]),
        )
    return alerts


def halting_table(summary: dict[str, Any]) -> Table:
    halting = Table(title="Halting rules (SAFETY_RULES §4)", title_justify="left")
    for column in ("rule", "count", "boundary", "posterior", "status"):
        halting.add_column(column)
    fired = {signal["rule_id"] for signal in summary["signals"] if signal["rule_id"] in HALTING_RULES}
    for row in summary["halting"]:
        state = "not reached"
        if row["latched"]:
            state = "[red]REACHED: study paused[/]"
        elif row["rule_id"] in fired:
            state = "reached, then resumed by the DSMB"
        posterior = "" if row["posterior"] is None else f"{row['posterior']:.3f}"
        boundary = "" if row["boundary"] is None else str(row["boundary"])
        halting.add_row(row["rule_id"], str(row["count"]), boundary, posterior, state)
    return halting


def _write_mail(rows: list[Any], directory: Path) -> list[tuple[str, str]]:
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.eml"):
        old.unlink()
    written = []
    for row in rows:
        path = directory / f"{row.id:04d}.eml"
        path.write_bytes(bytes(row.raw))
        written.append((path.name, row.subject or ""))
    return written


async def export_mail(engine: AsyncEngine, directory: Path) -> list[tuple[str, str]]:
    """Writes every message the SMTP sink stored to ``directory`` as .eml; returns (file, subject) pairs."""
    rows = await _rows(engine, "SELECT id, subject, raw FROM smtp_sink.message ORDER BY id")
    return await asyncio.to_thread(_write_mail, rows, directory)
