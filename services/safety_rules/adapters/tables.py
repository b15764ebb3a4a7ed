"""safety_rules' tables, in the ``safety_rules`` schema."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Identity, Index, Integer, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from shared.db import Base, OutboxMixin, ProcessedEventMixin, outbox_table_args

SCHEMA = "safety_rules"


class ProcessedEvent(ProcessedEventMixin, Base):
    """Records (``RecordIngested.record_id``) this consumer group has fully processed."""

    __tablename__ = "processed_event"
    __table_args__ = ({"schema": SCHEMA},)


class ParticipantState(Base):
    """The rules engine's memory of one participant (``ParticipantState.to_json``, its results aside: they are
    ``participant_result`` rows since migration 0007); ``version`` counts writes. Its adverse events,
    injection-site reactions and doses are in ``facts`` since migration 0009 (NULL: in ``state``)."""

    __tablename__ = "participant_state"
    __table_args__ = ({"schema": SCHEMA},)

    study_id: Mapped[str] = mapped_column(Text, primary_key=True)
    subject_id: Mapped[str] = mapped_column(Text, primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)  # json, lz4-compressed (migration 0005)
    version: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    facts: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # lz4 (migration 0009)


class ParticipantResult(Base):
    """One lab result of a participant (``LabValue.to_json``), in the order of its state's results (``seq``);
    the state row holds the rest of the state (``services.safety_rules.adapters.participant_rows``)."""

    __tablename__ = "participant_result"
    __table_args__ = ({"schema": SCHEMA},)

    study_id: Mapped[str] = mapped_column(Text, primary_key=True)
    subject_id: Mapped[str] = mapped_column(Text, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)


class StudyState(Base):
    """Study-level memory (``StudyState.to_json``); its row lock makes one writer per study."""

    __tablename__ = "study_state"
    __table_args__ = ({"schema": SCHEMA},)

    study_id: Mapped[str] = mapped_column(Text, primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)  # key order kept (migration 0005)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ProcessedSource(Base):
    """Source-record versions already evaluated: a re-sent duplicate under a new event id is ignored."""

    __tablename__ = "processed_source"
    __table_args__ = ({"schema": SCHEMA},)

    dedup_key: Mapped[str] = mapped_column(Text, primary_key=True)
    processed_at: Mapped[datetime] = mapped_column(server_default=func.now())


class SignalRecord(Base):
    """Every signal raised or retracted, exactly as published.

    ``payload`` is ``json``, not ``jsonb``: it keeps the INTERFACES §3 object's text and key order, so
    `trialwatch signals` prints what `trialwatch replay` prints. ``seq`` is the recording order.
    """

    __tablename__ = "signal"
    __table_args__ = (Index("ix_signal_recorded_at", "recorded_at"), {"schema": SCHEMA})

    signal_id: Mapped[str] = mapped_column(Text, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=False), unique=True)
    study_id: Mapped[str] = mapped_column(Text)
    subject_id: Mapped[str | None] = mapped_column(Text)
    rule_id: Mapped[str] = mapped_column(Text)
    severity: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"
    __table_args__ = outbox_table_args(SCHEMA)

    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # the signal's JSON in INTERFACES §3 order (migration 0005)
