"""DSMB decisions, read from trialwatch.events.v1: a RESUME lifts the study's pauses it names.

This is the choice of issue #5 for inhibition: the notifier observes the same DSMB record the engine
unlatches its halting rule on (INTERFACES §1.3, DOMAIN DSMB), instead of a second, manual resume in the
notifier's API. A lifted pause resolves its HALT alert (resolution names the DSMB record), and
participant-level NOTIFY alerts go out again as digests. Other records are acknowledged untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from services.notifier.adapters import alerts, pauses
from services.notifier.adapters.tables import ProcessedEvent
from services.notifier.adapters.unit import Unit
from services.notifier.context import SYSTEM_ACTOR, Context
from services.notifier.domain.inhibition import PauseEvent, active_pauses
from shared.events import DsmbDecisionRecorded, RecordIngested
from shared.logs import get_logger
from shared.messaging.idempotency import first_delivery

log = get_logger(__name__)


def resumes(record: RecordIngested) -> list[DsmbDecisionRecorded]:
    return [e for e in record.events if isinstance(e, DsmbDecisionRecorded) and e.decision == "RESUME"]


class Decisions:
    def __init__(self, context: Context, consumer_group: str) -> None:
        self._context = context
        self._group = consumer_group

    def wanted(self, record: RecordIngested) -> bool:
        """Whether ``record`` holds a RESUME for a study the notifier routes (the others are acknowledged untouched)."""
        return record.study_id in self._context.routing and bool(resumes(record))

    async def record_batch(self, records: Sequence[RecordIngested]) -> list[int]:
        """Applies the records' RESUME decisions in one transaction, in order; returns how many pauses each
        lifted (0 for a record applied before)."""
        now = self._context.clock()
        async with self._context.unit() as unit:
            lifted = [await self._apply(unit, record, now) for record in records]
        for record, count in zip(records, lifted, strict=True):
            log.info("dsmb.decision", study_id=record.study_id, record_id=record.record_id, pauses_lifted=count)
        return lifted

    async def _apply(self, unit: Unit, record: RecordIngested, now: datetime) -> int:
        found = resumes(record)
        if not found or not await first_delivery(unit.session, ProcessedEvent, self._group, record.record_id):
            return 0
        before = active_pauses(await pauses.pause_events(unit.session, record.study_id))
        for decision in found:
            event = PauseEvent("resume", decision.study_id, decision.rule_id, decision.recorded_at, decision.event_id)
            await pauses.record_pause_event(unit.session, event)
        after = {p.source_id for p in active_pauses(await pauses.pause_events(unit.session, record.study_id))}
        lifted = [pause for pause in before if pause.source_id not in after]
        await self._resolve(unit, lifted, found[0], now)
        return len(lifted)

    async def _resolve(
        self, unit: Unit, lifted: list[PauseEvent], decision: DsmbDecisionRecorded, now: datetime
    ) -> None:
        ids = [pause.alert_id for pause in lifted if pause.alert_id]
        for pause in lifted:
            unit.audit(
                SYSTEM_ACTOR, "study.resumed", pause.alert_id, rule_id=pause.rule_id, dsmb_event=decision.event_id
            )
        for alert in await alerts.halt_alerts_for_update(unit.session, ids):
            alerts.set_state(alert, "resolved", now)
            alert.resolved_at, alert.resolved_by = now, f"dsmb:{decision.source}"
            alert.resolution = f"DSMB RESUME ({decision.source})"
            unit.audit(SYSTEM_ACTOR, "alert.resolved", alert.alert_id, resolution=alert.resolution)
            self._context.changed(unit, alert, now)
