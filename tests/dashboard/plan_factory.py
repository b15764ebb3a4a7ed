"""The real ANAKINRA-AD monitoring plan (studies/), as the dashboard loads it."""

from __future__ import annotations

from functools import cache

from services.dashboard.adapters.plan_files import load_plan
from services.dashboard.domain.plan import MonitoringPlan


@cache
def anakinra_plan() -> MonitoringPlan:
    return load_plan()
