"""Signals: what the safety rules produce (INTERFACES §3), and alerts: what the notifier makes of them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, field_serializer

from shared.events.envelope import MODEL_CONFIG, utc_iso

Severity = Literal["INFO", "NOTIFY", "URGENT", "HALT"]
Action = Literal["NONE", "REPEAT_LAB", "HOLD_DOSE", "DISCONTINUE_TREATMENT", "PAUSE_STUDY", "DATA_QUERY"]
SignalStatus = Literal["RAISED", "RETRACTED"]


class Signal(BaseModel):
    """One signal, exactly the JSON object of INTERFACES §3 (published on trialwatch.signals.v1)."""

    model_config = MODEL_CONFIG

    kind: Literal["signal"] = Field(default="signal", exclude=True)
    schema_version: Literal[1] = Field(default=1, exclude=True)
    signal_id: str = Field(description="Deterministic id: same inputs, same id, in replay and live")
    study_id: str = Field(description="Study identifier")
    subject_id: str | None = Field(description="Participant; null for study-level rules (H-*)")
    rule_id: str = Field(description="SAFETY_RULES.md rule id, e.g. LAB-ANC-3")
    severity: Severity = Field(description="INFO, NOTIFY, URGENT or HALT")
    action: Action = Field(description="Action the charter requires")
    status: SignalStatus = Field(description="RAISED or RETRACTED")
    observed_at: AwareDatetime = Field(description="Event time of the triggering record (clocks: Day 0)")
    evidence: list[str] = Field(description="Source keys of the records that caused it")
    detail: dict[str, Any] = Field(default_factory=dict, description="Rule-specific figures (JSON numbers)")
    retracts: str | None = Field(default=None, description="signal_id this retraction withdraws")
    due_at: AwareDatetime | None = Field(default=None, description="Deadline of a regulatory clock")

    @field_serializer("observed_at", "due_at")
    def _zulu(self, value: AwareDatetime | None) -> str | None:
        return None if value is None else utc_iso(value)

    def to_public(self) -> dict[str, Any]:
        """The INTERFACES §3 object: optional keys only when they apply."""
        data = self.model_dump(mode="json")
        for key in ("retracts", "due_at"):
            if data[key] is None:
                del data[key]
        return data


AlertState = Literal["open", "notified", "acknowledged", "resolved"]


class AlertChanged(BaseModel):
    """An alert's state change, published by the notifier on trialwatch.alerts.v1."""

    model_config = MODEL_CONFIG

    kind: Literal["alert"] = "alert"
    schema_version: Literal[1] = 1
    alert_id: str = Field(description="Alert id (one per signal and routing)")
    signal_id: str = Field(description="Signal the alert is about")
    study_id: str = Field(description="Study identifier")
    rule_id: str = Field(description="Rule id of the signal")
    severity: Severity = Field(description="Severity of the signal")
    state: AlertState = Field(description="open, notified, acknowledged or resolved")
    changed_at: AwareDatetime = Field(description="When the state changed")
    actor: str | None = Field(default=None, description="Who changed it (acknowledging user)")
