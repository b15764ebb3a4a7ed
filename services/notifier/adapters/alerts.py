"""Alert rows: opening, locking, state changes and the reads behind ``GET /v1/alerts``.

Several alerts are always locked in alert-id order, so two transactions never wait on each other in a cycle.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.adapters.tables import Alert, Delivery, Timer
from shared.events import AlertChanged, deterministic_id
from shared.messaging.outbox import OutboxMessage


async def alert_for_update(session: AsyncSession, alert_id: str) -> Alert | None:
    return (await session.scalars(select(Alert).where(Alert.alert_id == alert_id).with_for_update())).first()


async def alert_of_signal_for_update(session: AsyncSession, signal_id: str) -> Alert | None:
    return (await session.scalars(select(Alert).where(Alert.signal_id == signal_id).with_for_update())).first()


async def alerts_for_update(session: AsyncSession, alert_ids: Iterable[str]) -> list[Alert]:
    query = select(Alert).where(Alert.alert_id.in_(sorted(set(alert_ids)))).order_by(Alert.alert_id)
    return list((await session.scalars(query.with_for_update())).all())


async def digest_members_for_update(session: AsyncSession, timer_id: int) -> list[Alert]:
    query = select(Alert).where(Alert.digest_timer_id == timer_id).order_by(Alert.alert_id).with_for_update()
    return list((await session.scalars(query)).all())


async def halt_alerts_for_update(session: AsyncSession, alert_ids: Iterable[str]) -> list[Alert]:
    return [alert for alert in await alerts_for_update(session, alert_ids) if alert.state != "resolved"]


async def folded_count(session: AsyncSession, alert_id: str) -> int:
    query = select(func.count()).select_from(Alert).where(Alert.inhibited_by == alert_id)
    return int((await session.execute(query)).scalar_one())


def set_state(alert: Alert, state: str, now: datetime) -> None:
    alert.state, alert.updated_at = state, now


def alert_changed(alert: Alert, topic: str, now: datetime, actor: str | None = None) -> OutboxMessage:
    """The alert's new state on trialwatch.alerts.v1, keyed by study; one record per (alert, state)."""
    change = AlertChanged(
        alert_id=alert.alert_id,
        signal_id=alert.signal_id,
        study_id=alert.study_id,
        rule_id=alert.rule_id,
        severity=alert.severity,
        state=alert.state,
        changed_at=now,
        actor=actor,
    )
    event_id = deterministic_id("alert-changed", alert.alert_id, alert.state)
    return OutboxMessage(event_id, topic, alert.study_id, change.model_dump(mode="json"))


@dataclass(frozen=True)
class AlertFilter:
    state: str | None = None
    severity: str | None = None
    study_id: str | None = None
    limit: int = 100


def summary(alert: Alert) -> dict[str, Any]:
    return {
        "alert_id": alert.alert_id,
        "signal_id": alert.signal_id,
        "study_id": alert.study_id,
        "subject_id": alert.subject_id,
        "rule_id": alert.rule_id,
        "severity": alert.severity,
        "state": alert.state,
        "mode": alert.routing.get("mode"),
        "created_at": alert.created_at,
        "ack_due_at": alert.ack_due_at,
        "escalation_level": alert.escalation_level,
        "inhibited_by": alert.inhibited_by,
        "acknowledged_at": alert.acknowledged_at,
        "acknowledged_by": alert.acknowledged_by,
        "resolved_at": alert.resolved_at,
    }


async def list_alerts(session: AsyncSession, where: AlertFilter) -> list[dict[str, Any]]:
    query = select(Alert).order_by(Alert.created_at.desc(), Alert.alert_id).limit(where.limit)
    for column, value in (
        (Alert.state, where.state),
        (Alert.severity, where.severity),
        (Alert.study_id, where.study_id),
    ):
        if value is not None:
            query = query.where(column == value)
    return [summary(alert) for alert in (await session.scalars(query)).all()]


def _delivery(row: Delivery) -> dict[str, Any]:
    keys = ("id", "kind", "receiver", "role", "recipient", "channel", "status", "attempts", "message_id")
    return {key: getattr(row, key) for key in keys} | {"last_error": row.last_error, "sent_at": row.sent_at}


async def alert_detail(session: AsyncSession, alert_id: str) -> dict[str, Any] | None:
    alert = await session.get(Alert, alert_id)
    if alert is None:
        return None
    deliveries = await session.scalars(
        select(Delivery).where(Delivery.alert_ids.contains([alert_id])).order_by(Delivery.id)
    )
    folded = await session.scalars(
        select(Alert.alert_id).where(Alert.inhibited_by == alert_id).order_by(Alert.alert_id)
    )
    timers = await session.scalars(select(Timer).where(Timer.alert_id == alert_id).order_by(Timer.fire_at))
    return summary(alert) | {
        "signal": alert.payload,
        "routing": alert.routing,
        "ack_comment": alert.ack_comment,
        "resolved_by": alert.resolved_by,
        "resolution": alert.resolution,
        "submitted_at": alert.submitted_at,
        "notified_at": alert.notified_at,
        "deliveries": [_delivery(row) for row in deliveries],
        "folded": list(folded),
        "timers": [
            {"kind": t.kind, "fire_at": t.fire_at, "fired_at": t.fired_at, "outcome": t.outcome} for t in timers
        ],
    }
