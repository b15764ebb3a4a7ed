"""A participant's timeline: lab series with their CTCAE grade bands and the lab's limits, and AEs,
injection-site reports, doses and signals on the same time axis."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.dashboard.domain.plan import PlottedTest, Threshold
from services.dashboard.domain.svg import Band, Line, Mark, Point, TimeAxis, event_lanes, lab_chart

LANES = ("AE", "ISR", "doses", "signals")
BAND_CEILING_FACTOR = 1.5


@dataclass(frozen=True)
class LabPoint:
    test: str
    at: datetime
    value: float
    lln: float | None
    uln: float | None
    status: str


@dataclass(frozen=True)
class TimelineEvent:
    at: datetime
    lane: str
    kind: str
    label: str


@dataclass(frozen=True)
class Timeline:
    charts: tuple[str, ...]
    lanes: str
    axis: TimeAxis


def grade_bands(thresholds: Sequence[Threshold], lln: float | None, uln: float | None) -> list[Band]:
    """Value ranges of each grade: below-limit grades ("lt") stack down from the grade-1 limit,
    above-limit grades ("gt") stack up from it (CTCAE interval semantics, SAFETY_RULES §1)."""
    bands: list[Band] = []
    for direction in (("lt", "le"), ("gt", "ge")):
        levels = sorted(
            ((t.grade, level) for t in thresholds if t.op in direction and (level := t.level(lln, uln)) is not None),
            reverse=True,
        )
        below = direction[0] == "lt"
        for index, (grade, level) in enumerate(levels):
            neighbour = levels[index - 1][1] if index else (0.0 if below else level * BAND_CEILING_FACTOR * 4)
            low, high = (neighbour, level) if below else (level, neighbour)
            if high > low:
                bands.append(Band(low, high, f"CTCAE grade {grade}", grade))
    return bands


def limit_lines(points: Sequence[LabPoint]) -> list[Line]:
    latest = max(points, key=lambda p: p.at, default=None)
    if latest is None:
        return []
    lines = [] if latest.lln is None else [Line(latest.lln, "LLN")]
    return lines + ([] if latest.uln is None else [Line(latest.uln, "ULN")])


def time_axis(moments: Sequence[datetime], now: datetime) -> TimeAxis:
    if not moments:
        return TimeAxis(now - timedelta(days=30), now)
    start, end = min(moments), max(moments)
    pad = max((end - start) / 20, timedelta(days=1))
    return TimeAxis(start - pad, end + pad)


def build_timeline(
    subject_id: str,
    tests: Sequence[PlottedTest],
    labs: Sequence[LabPoint],
    events: Sequence[TimelineEvent],
    now: datetime,
) -> Timeline:
    axis = time_axis([p.at for p in labs] + [e.at for e in events], now)
    charts: list[str] = []
    for test in tests:
        series = [p for p in labs if p.test == test.test]
        latest = max(series, key=lambda p: p.at, default=None)
        lln, uln = (latest.lln, latest.uln) if latest else (None, None)
        points = [Point(p.at, p.value, f"{p.at:%Y-%m-%d %H:%M} {p.value:g} {test.unit} ({p.status})") for p in series]
        title = f"{subject_id} · {test.label} ({test.unit})"
        charts.append(lab_chart(title, axis, points, grade_bands(test.thresholds, lln, uln), limit_lines(series)))
    marks = [Mark(e.at, e.lane, e.kind, e.label) for e in events]
    return Timeline(tuple(charts), event_lanes(f"{subject_id} · events", axis, marks, LANES), axis)
