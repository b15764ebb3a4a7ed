"""What people do to alerts through the API: acknowledge (by token or signed link), resolve, and record a
clock's submission, which publishes a REG record for ingest (and so stops the engine's clock).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.notifier.adapters import alerts
from services.notifier.adapters.tables import Alert
from services.notifier.adapters.unit import Unit
from services.notifier.context import Context
from services.notifier.domain.acknowledgement import acting_role
from services.notifier.domain.clocks import RegRecord, reg_record
from services.notifier.domain.links import verify_link
from services.notifier.domain.model import Role
from shared.events import deterministic_id
from shared.messaging.outbox import OutboxMessage


class NotFoundError(LookupError):
    pass


class ForbiddenError(PermissionError):
    pass


class ConflictError(RuntimeError):
    pass


@dataclass(frozen=True)
class Actor:
    name: str
    roles: frozenset[Role]
    via: str


class Actions:
    def __init__(self, context: Context, link_key: bytes) -> None:
        self._context = context
        self._link_key = link_key

    async def _locked(self, unit: Unit, alert_id: str) -> Alert:
        alert = await alerts.alert_for_update(unit.session, alert_id)
        if alert is None:
            raise NotFoundError(f"no alert {alert_id}")
        return alert

    @staticmethod
    def _role(actor: Actor, allowed: Iterable[str], what: str) -> Role:
        role = acting_role(actor.roles, allowed)
        if role is None:
            raise ForbiddenError(f"{actor.name} ({', '.join(sorted(actor.roles)) or 'no role'}) may not {what}")
        return role

    async def acknowledge(self, alert_id: str, actor: Actor, comment: str | None) -> dict[str, Any]:
        now = self._context.clock()
        async with self._context.unit() as unit:
            alert = await self._locked(unit, alert_id)
            role = self._role(actor, alert.routing.get("ack_roles", []), f"acknowledge {alert.rule_id}")
            if alert.state in ("acknowledged", "resolved"):
                raise ConflictError(f"alert {alert_id} is already {alert.state}")
            alerts.set_state(alert, "acknowledged", now)
            alert.acknowledged_at, alert.acknowledged_by, alert.ack_comment = now, actor.name, comment
            unit.audit(actor.name, "alert.acknowledged", alert_id, role=role, via=actor.via, comment=comment)
            self._context.changed(unit, alert, now, actor.name)
            return alerts.summary(alert)

    async def acknowledge_link(self, token: str, comment: str | None) -> dict[str, Any]:
        claim = verify_link(self._link_key, token, self._context.clock())
        actor = Actor(claim.recipient, frozenset({claim.role}), "link")
        return await self.acknowledge(claim.alert_id, actor, comment)

    async def resolve(self, alert_id: str, actor: Actor, comment: str | None) -> dict[str, Any]:
        now = self._context.clock()
        async with self._context.unit() as unit:
            alert = await self._locked(unit, alert_id)
            role = self._role(actor, self._context.config(alert.study_id).ack.resolve, "resolve alerts")
            if alert.state == "resolved":
                raise ConflictError(f"alert {alert_id} is already resolved")
            alerts.set_state(alert, "resolved", now)
            alert.resolved_at, alert.resolved_by, alert.resolution = now, actor.name, comment or "resolved"
            unit.audit(actor.name, "alert.resolved", alert_id, role=role, via=actor.via, resolution=alert.resolution)
            self._context.changed(unit, alert, now, actor.name)
            return alerts.summary(alert)

    async def submit(self, signal_id: str, actor: Actor, submitted_at: datetime | None) -> RegRecord:
        """Records the expedited report of a clock signal and publishes its REG record."""
        now = self._context.clock()
        async with self._context.unit() as unit:
            alert = await alerts.alert_of_signal_for_update(unit.session, signal_id)
            if alert is None:
                raise NotFoundError(f"no alert for signal {signal_id}")
            config = self._context.config(alert.study_id)
            role = self._role(actor, config.ack.submit, "record submissions")
            record = reg_record(alert.payload, config.clocks, submitted_at or now)
            if alert.submitted_at is not None:
                raise ConflictError(f"the submission of {signal_id} was recorded at {alert.submitted_at.isoformat()}")
            unit.publish(self._record_message(record))
            alert.submitted_at = submitted_at or now
            unit.audit(
                actor.name, "clock.submitted", alert.alert_id, role=role, via=actor.via, record=record.model_dump()
            )
            if alert.state != "resolved":
                alerts.set_state(alert, "resolved", now)
                alert.resolved_at, alert.resolved_by, alert.resolution = (
                    now,
                    actor.name,
                    f"submitted ({record.REGCLOCK})",
                )
                self._context.changed(unit, alert, now, actor.name)
            return record

    def _record_message(self, record: RegRecord) -> OutboxMessage:
        return OutboxMessage(
            event_id=deterministic_id("reg-record", record.RECID),
            topic=self._context.topics.records,
            key=record.STUDYID,
            payload=record.model_dump(),
        )
