"""Use cases of the pages: read what a page needs (adapters/reads.py) and shape it (domain/)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from services.dashboard.adapters import reads
from services.dashboard.domain.endpoint import endpoint_summary
from services.dashboard.domain.halting import boundary_curve, halting_table, pause_status
from services.dashboard.domain.participants import participant_view
from services.dashboard.domain.plan import MonitoringPlan
from services.dashboard.domain.svg import boundary_plot
from services.dashboard.domain.timeline import build_timeline

SEVERITIES = ("HALT", "URGENT", "NOTIFY", "INFO")
STATES = ("open", "notified", "acknowledged", "resolved")
RECENT_SIGNALS = 25


@dataclass(frozen=True)
class Page:
    plan: MonitoringPlan
    now: datetime


async def overview(connection: AsyncConnection, page: Page) -> dict[str, Any]:
    plan, now = page.plan, page.now
    facts = await reads.participants(connection, plan.study_id, now)
    people = [participant_view(f, plan, now) for f in facts]
    state = await reads.study_state_json(connection, plan.study_id)
    counts = await reads.open_alerts(connection, plan.study_id)
    clocks = [(clock, clock.due_at - now) for clock in reads.clocks_of(state)]
    return {
        "participants": people,
        "evaluable": sum(1 for p in people if p.evaluable),
        "not_evaluable": sum(1 for p in people if p.evaluable is False),
        "open_alerts": [(severity, counts.get(severity, 0)) for severity in SEVERITIES],
        "clocks": clocks,
        "breaches": await reads.breaches(connection, plan.study_id),
        "currency": await reads.data_currency(connection, plan.study_id),
        "pause": pause_status(await reads.pauses(connection, plan.study_id)),
        "signals": await reads.signals_after(connection, plan.study_id, 0, RECENT_SIGNALS),
    }


async def halting(connection: AsyncConnection, page: Page) -> dict[str, Any]:
    plan = page.plan
    state = await reads.study_state(connection, plan.study_id)
    rows = halting_table(plan, state)
    plots = []
    for rule in plan.halting:
        if rule.bayesian is None:
            continue
        row = next(r for r in rows if r.rule_id == rule.rule_id)
        curve = boundary_curve(rule, plan.planned_participants)
        svg = boundary_plot(
            f"{rule.rule_id}: boundary b_n over n (stop when x >= b_n)",
            [(point.n, point.boundary) for point in curve],
            (row.n, row.count) if row.n else None,
        )
        plots.append((rule, row, curve, svg))
    return {"rows": rows, "plots": plots, "pause": pause_status(await reads.pauses(connection, plan.study_id))}


async def timeline(connection: AsyncConnection, page: Page, subject_id: str) -> dict[str, Any]:
    labs, events, signals = await reads.subject_timeline(connection, page.plan.study_id, subject_id)
    built = build_timeline(subject_id, page.plan.plotted, labs, events, page.now)
    return {"subject_id": subject_id, "timeline": built, "signals": signals, "found": bool(labs or events)}


async def endpoint(connection: AsyncConnection, page: Page) -> dict[str, Any]:
    plan = page.plan
    facts = await reads.participants(connection, plan.study_id, page.now)
    people = await reads.endpoint_people(connection, plan.study_id, plan.endpoint_rule, page.now, facts)
    return {"summary": endpoint_summary(people, plan, page.now), "people": people}
