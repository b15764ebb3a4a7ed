"""Server-rendered SVG charts (no JavaScript, no external assets): lab series with grade bands and the
lab's limits, event lanes on the same time axis, and the H-SI boundary over n. Returns markup strings
with every text escaped; the same markup goes inline into the dashboard and the DSMB packet."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

WIDTH, LEFT, RIGHT, TOP, BOTTOM = 860, 64, 16, 22, 26
GRADE_FILL = {1: "#fff7d6", 2: "#ffe3b3", 3: "#ffc4a8", 4: "#ff9f9f"}
KIND_COLOUR = {"AE": "#8e24aa", "ISR": "#00897b", "dose": "#1e88e5", "missed": "#9e9e9e", "signal": "#d32f2f"}


@dataclass(frozen=True)
class TimeAxis:
    start: datetime
    end: datetime

    def x(self, moment: datetime) -> float:
        span = (self.end - self.start).total_seconds() or 1.0
        return LEFT + (WIDTH - LEFT - RIGHT) * (moment - self.start).total_seconds() / span

    def ticks(self, count: int = 6) -> list[tuple[float, str]]:
        span = self.end - self.start
        moments = [self.start + span * i / count for i in range(count + 1)]
        return [(self.x(moment), moment.strftime("%Y-%m-%d")) for moment in moments]


@dataclass(frozen=True)
class Band:
    """A shaded value range, e.g. CTCAE grade 3 of ANC: 0.5 <= v < 1.0."""

    low: float
    high: float
    label: str
    grade: int


@dataclass(frozen=True)
class Line:
    value: float
    label: str


@dataclass(frozen=True)
class Point:
    at: datetime
    value: float
    label: str


@dataclass(frozen=True)
class Mark:
    at: datetime
    lane: str
    kind: str
    label: str


def _num(value: float) -> str:
    return f"{value:.1f}"


def _frame(height: int, title: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="{LEFT}" y="14" font-weight="bold">{escape(title)}</text>',
    ]


def _time_ticks(axis: TimeAxis, bottom: float) -> list[str]:
    parts = [f'<line x1="{LEFT}" y1="{_num(bottom)}" x2="{WIDTH - RIGHT}" y2="{_num(bottom)}" stroke="#555"/>']
    for x, label in axis.ticks():
        parts.append(f'<line x1="{_num(x)}" y1="{_num(bottom)}" x2="{_num(x)}" y2="{_num(bottom + 4)}" stroke="#555"/>')
        parts.append(f'<text x="{_num(x)}" y="{_num(bottom + 15)}" text-anchor="middle">{label}</text>')
    return parts


def lab_chart(
    title: str,
    axis: TimeAxis,
    points: Sequence[Point],
    bands: Sequence[Band],
    lines: Sequence[Line],
    *,
    height: int = 180,
) -> str:
    # The scale follows the data and the lab's limits; grade bands beyond them are clipped, not zoomed to.
    values = [p.value for p in points] + [line.value for line in lines]
    top_value = max(values, default=max((b.low for b in bands), default=1.0)) * 1.25 or 1.0
    plot_bottom = height - BOTTOM

    def y(value: float) -> float:
        clamped = min(max(value, 0.0), top_value)
        return plot_bottom - (plot_bottom - TOP) * clamped / top_value

    parts = _frame(height, title)
    for band in bands:
        upper, lower = y(min(band.high, top_value)), y(band.low)
        parts.append(
            f'<rect class="band grade-{band.grade}" x="{LEFT}" y="{_num(upper)}" width="{WIDTH - LEFT - RIGHT}" '
            f'height="{_num(max(lower - upper, 0))}" fill="{GRADE_FILL.get(band.grade, "#eee")}">'
            f"<title>{escape(band.label)}</title></rect>"
        )
        parts.append(
            f'<text x="{WIDTH - RIGHT - 2}" y="{_num(lower - 2)}" text-anchor="end" fill="#a33">G{band.grade}</text>'
        )
    for line in lines:
        parts.append(
            f'<line x1="{LEFT}" y1="{_num(y(line.value))}" x2="{WIDTH - RIGHT}" y2="{_num(y(line.value))}" '
            f'stroke="#2e7d32" stroke-dasharray="4 3"><title>{escape(line.label)}</title></line>'
        )
        label_y = _num(y(line.value) + 4)
        parts.append(f'<text x="{LEFT - 4}" y="{label_y}" text-anchor="end" fill="#2e7d32">{escape(line.label)}</text>')
    ordered = sorted(points, key=lambda p: p.at)
    if len(ordered) > 1:
        path = " ".join(f"{_num(axis.x(p.at))},{_num(y(p.value))}" for p in ordered)
        parts.append(f'<polyline points="{path}" fill="none" stroke="#1565c0" stroke-width="1.5"/>')
    for point in ordered:
        parts.append(
            f'<circle class="result" cx="{_num(axis.x(point.at))}" cy="{_num(y(point.value))}" r="3" fill="#1565c0">'
            f"<title>{escape(point.label)}</title></circle>"
        )
    parts += _time_ticks(axis, plot_bottom)
    parts.append(f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{_num(top_value)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def event_lanes(title: str, axis: TimeAxis, marks: Sequence[Mark], lanes: Sequence[str]) -> str:
    lane_height = 22
    height = TOP + lane_height * len(lanes) + BOTTOM + 4
    parts = _frame(height, title)
    for index, lane in enumerate(lanes):
        middle = TOP + lane_height * index + lane_height / 2
        parts.append(f'<text x="{LEFT - 4}" y="{_num(middle + 4)}" text-anchor="end">{escape(lane)}</text>')
        parts.append(f'<line x1="{LEFT}" y1="{_num(middle)}" x2="{WIDTH - RIGHT}" y2="{_num(middle)}" stroke="#ddd"/>')
        for mark in (m for m in marks if m.lane == lane):
            colour = KIND_COLOUR.get(mark.kind, "#333")
            x = _num(axis.x(mark.at))
            parts.append(
                f'<rect class="mark {escape(mark.kind)}" x="{x}" y="{_num(middle - 7)}" width="3" height="14" '
                f'fill="{colour}"><title>{escape(mark.label)}</title></rect>'
            )
    parts += _time_ticks(axis, height - BOTTOM)
    parts.append("</svg>")
    return "".join(parts)


def boundary_plot(title: str, boundaries: Sequence[tuple[int, int | None]], observed: tuple[int, int] | None) -> str:
    """b_n as a step line over n, and the observed (n, x) as a dot; stop when the dot reaches the line."""
    height = 200
    n_max = max((n for n, _ in boundaries), default=1)
    x_max = max([b for _, b in boundaries if b is not None] + [observed[1] if observed else 0, 1]) + 1
    plot_bottom = height - BOTTOM

    def px(n: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * (n - 0.5) / n_max

    def py(x: float) -> float:
        return plot_bottom - (plot_bottom - TOP) * x / x_max

    parts = _frame(height, title)
    steps = [(n, b) for n, b in boundaries if b is not None]
    path = " ".join(f"{_num(px(n - 0.5))},{_num(py(b))} {_num(px(n + 0.5))},{_num(py(b))}" for n, b in steps)
    parts.append(f'<polyline class="boundary" points="{path}" fill="none" stroke="#c62828" stroke-width="2"/>')
    for n, b in steps:
        parts.append(f'<text x="{_num(px(n))}" y="{_num(py(b) - 4)}" text-anchor="middle" fill="#c62828">b={b}</text>')
    for x in range(x_max + 1):
        parts.append(f'<text x="{LEFT - 6}" y="{_num(py(x) + 4)}" text-anchor="end">{x}</text>')
    for n in range(1, n_max + 1):
        parts.append(f'<text x="{_num(px(n))}" y="{plot_bottom + 15}" text-anchor="middle">n={n}</text>')
    parts.append(f'<line x1="{LEFT}" y1="{plot_bottom}" x2="{WIDTH - RIGHT}" y2="{plot_bottom}" stroke="#555"/>')
    if observed is not None:
        n, x = observed
        parts.append(
            f'<circle class="observed" cx="{_num(px(max(n, 1)))}" cy="{_num(py(x))}" r="6" fill="#1565c0">'
            f"<title>observed: {x} of {n}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)
