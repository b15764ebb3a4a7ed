"""What routing reads and decides about: roles, channels, receivers and the facts of one signal."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.auth.roles import ROLES, Role
from shared.events.signal import Action, Severity, Signal, SignalStatus

__all__ = ["ROLES", "Role"]  # re-exported: the roles are shared with the dashboard (shared.auth)

ChannelKind = Literal["email", "webhook"]
#: How a severity is sent (SAFETY_RULES §1): stored only, grouped into a digest, or sent at once.
Dispatch = Literal["store", "digest", "immediate"]
Level = Literal["participant", "study"]


@dataclass(frozen=True)
class Channel:
    kind: ChannelKind
    address: str


@dataclass(frozen=True)
class Receiver:
    """A named receiver of the routing configuration: one role, any number of addresses."""

    name: str
    role: Role
    channels: tuple[Channel, ...]


@dataclass(frozen=True)
class SignalFacts:
    """The labels of a signal that routing, inhibition and escalation match on."""

    study_id: str
    subject_id: str | None
    rule_id: str
    severity: Severity
    action: Action
    status: SignalStatus

    @property
    def level(self) -> Level:
        return "participant" if self.subject_id else "study"

    def label(self, name: str) -> str:
        labels = {
            "study_id": self.study_id,
            "rule_id": self.rule_id,
            "severity": self.severity,
            "action": self.action,
            "status": self.status,
            "level": self.level,
        }
        return labels[name]

    @classmethod
    def of(cls, signal: Signal) -> SignalFacts:
        return cls(signal.study_id, signal.subject_id, signal.rule_id, signal.severity, signal.action, signal.status)
