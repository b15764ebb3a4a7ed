"""What a notification says: rule, participant, evidence, action required, due times and acknowledgement links.

One rendering feeds both channels: the e-mail's subject and plain-text body, and the webhook's JSON. The
message is rendered once, when the delivery is queued, and stored with it, so a retry sends the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from shared.events.envelope import utc_iso

MessageKind = Literal["alert", "digest", "escalation", "reminder", "retraction", "failure", "unconfirmed"]
NoticeKind = Literal["failure", "unconfirmed"]

ACTION_TEXT = {
    "NONE": "no protocol action; review the finding",
    "REPEAT_LAB": "repeat the laboratory test",
    "HOLD_DOSE": "hold dosing",
    "DISCONTINUE_TREATMENT": "discontinue study treatment",
    "PAUSE_STUDY": "pause the study pending the DSMB's review",
    "DATA_QUERY": "raise a data query with the site",
}
HEADLINES: Mapping[MessageKind, str] = {
    "alert": "",
    "digest": "DIGEST",
    "escalation": "ESCALATION",
    "reminder": "REMINDER",
    "retraction": "RETRACTED",
    "failure": "DELIVERY FAILED",
    "unconfirmed": "DELIVERY UNCONFIRMED",
}
NOTICE_OPENINGS: Mapping[NoticeKind, str] = {
    "failure": "A notification could not be delivered and was dead-lettered",
    "unconfirmed": "A notification may or may not have arrived: it was handed to the receiver, but the "
    "receiver's answer was never recorded. It was NOT sent again (that could duplicate it). Look its "
    "Message-ID up in the receiving server's log; an unacknowledged alert still escalates",
}


@dataclass(frozen=True)
class AlertView:
    """One alert as a message shows it: the signal (INTERFACES §3 JSON) and what the recipient can do."""

    alert_id: str
    signal: Mapping[str, Any]
    ack_due_at: datetime | None
    ack_url: str | None
    folded: int = 0


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    body: Mapping[str, Any]


def _participant(signal: Mapping[str, Any]) -> str:
    return str(signal.get("subject_id") or "study-level")


def _lines(view: AlertView) -> list[str]:
    signal = view.signal
    lines = [
        f"Rule:            {signal['rule_id']} ({signal['severity']})",
        f"Study:           {signal['study_id']}",
        f"Participant:     {_participant(signal)}",
        f"Observed at:     {signal['observed_at']}",
        f"Action required: {signal['action']} - {ACTION_TEXT.get(signal['action'], signal['action'])}",
        "Evidence:        " + ", ".join(signal.get("evidence", [])),
    ]
    lines += [f"  {key}: {value}" for key, value in sorted(signal.get("detail", {}).items())]
    if signal.get("due_at"):
        lines.append(f"Report due:      {signal['due_at']}")
    if view.ack_due_at is not None:
        lines.append(f"Acknowledge by:  {utc_iso(view.ack_due_at)}")
    if view.folded:
        lines.append(f"Folded in:       {view.folded} participant-level alert(s) raised during the pause")
    if view.ack_url:
        lines.append(f"Acknowledge:     {view.ack_url}")
    return lines


def _subject(kind: MessageKind, views: Sequence[AlertView]) -> str:
    headline = HEADLINES[kind]
    prefix = f"[TrialWatch {headline}]" if headline else "[TrialWatch]"
    if kind == "digest":
        return f"{prefix} {len(views)} NOTIFY alert(s) for {views[0].signal['study_id']}"
    signal = views[0].signal
    what = f"{signal['severity']} {signal['rule_id']} {signal['study_id']} {_participant(signal)}"
    return f"{prefix} {what}"


def render(kind: MessageKind, views: Sequence[AlertView], *, recipient: str, role: str, note: str = "") -> Message:
    """The message for ``recipient`` (acting as ``role``) about ``views`` (one alert, or a digest's)."""
    if not views:
        raise ValueError("a message is about at least one alert")
    blocks = ["\n".join(_lines(view)) for view in views]
    text = "\n\n".join([line for line in (note,) if line] + blocks) + "\n"
    body = {
        "type": kind,
        "recipient": recipient,
        "role": role,
        "note": note or None,
        "alerts": [
            {
                "alert_id": view.alert_id,
                "signal": dict(view.signal),
                "ack_due_at": utc_iso(view.ack_due_at) if view.ack_due_at else None,
                "ack_url": view.ack_url,
            }
            for view in views
        ],
    }
    return Message(_subject(kind, views), text, body)


def delivery_notice(
    kind: NoticeKind, delivery: Mapping[str, Any], reason: str, *, recipient: str, now: datetime
) -> Message:
    """For the admin receivers: a delivery that will never arrive (dead-lettered), or whose arrival is unknown."""
    subject = f"[TrialWatch {HEADLINES[kind]}] {delivery['channel']} to {delivery['recipient']}"
    lines = [f"{key}: {value}" for key, value in sorted(delivery.items())]
    text = "\n".join([f"{NOTICE_OPENINGS[kind]} ({utc_iso(now)}).", f"reason: {reason}", *lines]) + "\n"
    body = {"type": kind, "recipient": recipient, "role": "admin", "delivery": dict(delivery), "error": reason}
    return Message(subject, text, body)
