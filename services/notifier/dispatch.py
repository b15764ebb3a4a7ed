"""Queues notifications: renders one message per (receiver address, channel) and writes it as a PENDING
delivery with its deterministic Message-ID. The dispatch key names what is being sent (a signal, a
digest, an escalation step, a reminder, a notice to admins), so queuing the same thing twice queues nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from services.notifier.adapters.audit import SYSTEM_ACTOR
from services.notifier.adapters.deliveries import NewDelivery, Queued
from services.notifier.adapters.tables import Alert
from services.notifier.adapters.unit import Unit
from services.notifier.domain.links import AckClaim, sign_link
from services.notifier.domain.messages import AlertView, Message, MessageKind, NoticeKind, delivery_notice, render
from services.notifier.domain.model import Channel, Receiver
from services.notifier.domain.routing_config import RoutingConfig
from shared.events import deterministic_id

__all__ = ["CLOSED_STATES", "SYSTEM_ACTOR", "Dispatcher", "Links", "Outgoing", "message_id"]

CLOSED_STATES = ("acknowledged", "resolved")


@dataclass(frozen=True)
class Outgoing:
    kind: MessageKind
    dispatch_key: str
    alerts: Sequence[Alert]
    receivers: Sequence[str]
    note: str = ""
    folded: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Links:
    """Builds the signed, expiring acknowledgement links of the messages."""

    key: bytes
    base_url: str

    def url(self, claim: AckClaim) -> str:
        return f"{self.base_url.rstrip('/')}/v1/ack/{sign_link(self.key, claim)}"


def message_id(dispatch_key: str, recipient: str, channel: str, domain: str) -> str:
    """RFC 5322 Message-ID, the same for every attempt of one delivery (receivers de-duplicate on it)."""
    return f"<{deterministic_id('delivery', dispatch_key, recipient, channel)}@{domain}>"


class Dispatcher:
    def __init__(self, routing: Mapping[str, RoutingConfig], links: Links, message_id_domain: str) -> None:
        self._routing = routing
        self._links = links
        self._domain = message_id_domain

    def _view(self, alert: Alert, receiver: Receiver, address: str, outgoing: Outgoing, now: datetime) -> AlertView:
        config = self._routing[alert.study_id]
        can_ack = receiver.role in alert.routing.get("ack_roles", []) and alert.state not in CLOSED_STATES
        url = None
        if can_ack and outgoing.kind not in ("retraction", "failure", "unconfirmed"):
            expires = now + config.timing.ack_link_ttl
            url = self._links.url(AckClaim(alert.alert_id, receiver.role, address, expires))
        return AlertView(alert.alert_id, alert.payload, alert.ack_due_at, url, outgoing.folded.get(alert.alert_id, 0))

    def _message(self, receiver: Receiver, channel: Channel, outgoing: Outgoing, now: datetime) -> Message:
        views = [self._view(alert, receiver, channel.address, outgoing, now) for alert in outgoing.alerts]
        return render(outgoing.kind, views, recipient=channel.address, role=receiver.role, note=outgoing.note)

    async def queue(self, unit: Unit, outgoing: Outgoing, now: datetime) -> int:
        """Queues ``outgoing`` for every channel of its receivers; returns how many deliveries are new."""
        queued = self.defer(unit, outgoing, now)
        await unit.flush()
        return sum(item.delivery_id is not None for item in queued)

    def defer(self, unit: Unit, outgoing: Outgoing, now: datetime) -> list[Queued]:
        """``queue`` without writing yet: the unit writes the deliveries with its other rows."""
        config = self._routing[outgoing.alerts[0].study_id]
        alert_ids = [alert.alert_id for alert in outgoing.alerts]
        signal_id = outgoing.alerts[0].signal_id if len(alert_ids) == 1 else None
        queued = []
        for receiver in (config.receivers[name] for name in dict.fromkeys(outgoing.receivers)):
            for channel in receiver.channels:
                message = self._message(receiver, channel, outgoing, now)
                new = self._new(
                    outgoing.dispatch_key, outgoing.kind, alert_ids, receiver=receiver, channel=channel, message=message
                )
                queued.append(unit.queue_delivery(replace(new, signal_id=signal_id), now))
        return queued

    async def queue_notice(
        self,
        unit: Unit,
        config: RoutingConfig,
        kind: NoticeKind,
        *,
        delivery: Mapping[str, Any],
        reason: str,
        now: datetime,
    ) -> int:
        """Tells the routing's ``failures.notify`` receivers that ``delivery`` failed for good or is unconfirmed."""
        queued = []
        for receiver in (config.receivers[name] for name in config.failure_receivers):
            for channel in receiver.channels:
                message = delivery_notice(kind, delivery, reason, recipient=channel.address, now=now)
                key = f"{kind}:{delivery['id']}"
                alert_ids = list(delivery["alert_ids"])
                new = self._new(key, kind, alert_ids, receiver=receiver, channel=channel, message=message)
                queued.append(unit.queue_delivery(new, now))
        await unit.flush()
        return sum(item.delivery_id is not None for item in queued)

    def _new(
        self, key: str, kind: str, alert_ids: list[str], *, receiver: Receiver, channel: Channel, message: Message
    ) -> NewDelivery:
        return NewDelivery(
            dispatch_key=key,
            kind=kind,
            alert_ids=alert_ids,
            signal_id=None,
            receiver=receiver.name,
            role=receiver.role,
            recipient=channel.address,
            channel=channel.kind,
            message_id=message_id(key, channel.address, channel.kind, self._domain),
            message={"subject": message.subject, "text": message.text, "body": dict(message.body)},
        )
