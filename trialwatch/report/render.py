"""The packet as one self-contained HTML file: inline CSS, plots as inline SVG, no scripts, no links out.

The content hash is the SHA-256 of the packet's body (every table and plot); the provenance block
around it (cut, input hash, code version, the content hash itself) is stamped outside the hashed part,
so the same cut of the same data gives the same content hash whatever code revision printed it.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from services.dashboard.domain.halting import HaltingRow, boundary_curve
from services.dashboard.domain.plan import MonitoringPlan
from services.dashboard.domain.svg import boundary_plot
from services.dashboard.domain.timeline import LabPoint, build_timeline
from services.safety_rules.domain import StudyConfig
from shared.events import utc_iso
from trialwatch.report import tables
from trialwatch.report.evaluation import Evaluation
from trialwatch.report.snapshot import Snapshot

TEMPLATES = Path(__file__).parent / "templates"
REPO = Path(__file__).resolve().parents[2]
INDIVIDUAL_TESTS = ("NEUT", "ALT")


@dataclass(frozen=True)
class Packet:
    html: str
    content_hash: str
    input_hash: str
    halting: list[HaltingRow]


def code_version() -> str:
    version = metadata.version("trialwatch")
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=5, check=False
        )
    except OSError:
        return version
    return f"{version}+{found.stdout.strip()}" if found.returncode == 0 and found.stdout.strip() else version


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), undefined=StrictUndefined
    )
    env.filters["when"] = lambda value: "" if value is None else utc_iso(value)
    return env


def _individual_plots(plan: MonitoringPlan, evaluation: Evaluation, cut: datetime) -> list[str]:
    tests = [test for test in plan.plotted if test.test in INDIVIDUAL_TESTS]
    charts: list[str] = []
    for subject, state in evaluation.participants.items():
        points = [
            LabPoint(
                r.test,
                r.at,
                float(r.value),
                None if r.lln is None else float(r.lln),
                None if r.uln is None else float(r.uln),
                r.status,
            )
            for r in sorted(state.results.values(), key=lambda r: (r.at, r.key))
            if r.test in INDIVIDUAL_TESTS and r.usable and r.value is not None
        ]
        if points:
            charts += build_timeline(subject, tests, points, [], cut).charts
    return charts


def _body_values(
    config: StudyConfig, plan: MonitoringPlan, snapshot: Snapshot, evaluation: Evaluation
) -> dict[str, Any]:
    cut = snapshot.cut
    facts = tables.participant_facts(evaluation, snapshot)
    state, halting_rows = tables.halting(plan, evaluation)
    plots = []
    for rule in (r for r in plan.halting if r.bayesian is not None):
        row = next(r for r in halting_rows if r.rule_id == rule.rule_id)
        curve = boundary_curve(rule, plan.planned_participants)
        svg = boundary_plot(
            f"{rule.rule_id}: b_n over n", [(p.n, p.boundary) for p in curve], (row.n, row.count) if row.n else None
        )
        plots.append((rule, curve, svg))
    return {
        "plan": plan,
        "cut": cut,
        "facts": facts,
        "exposure": tables.exposure(facts, plan, cut),
        "ae_rows": tables.ae_table(evaluation),
        "grades": tables.GRADES,
        "saes": tables.sae_listing(evaluation),
        "shifts": [tables.shift_table(config, evaluation, test) for test in plan.shift_tests],
        "halting": halting_rows,
        "dosed": len(state.dosed),
        "plots": plots,
        "endpoint": tables.endpoint(plan, evaluation, facts, cut),
        "individual": _individual_plots(plan, evaluation, cut),
        "signal_counts": sorted(
            {
                s.rule_id: sum(1 for t in evaluation.signals if t.rule_id == s.rule_id and t.status == "RAISED")
                for s in evaluation.signals
            }.items()
        ),
        "records": len(snapshot.records),
        "events": snapshot.event_count,
    }


def render_packet(config: StudyConfig, plan: MonitoringPlan, snapshot: Snapshot, evaluation: Evaluation) -> Packet:
    env = _environment()
    values = _body_values(config, plan, snapshot, evaluation)
    body = env.get_template("body.html").render(**values)
    content_hash = hashlib.sha256(body.encode()).hexdigest()
    html = env.get_template("packet.html").render(
        body=body,
        plan=plan,
        cut=snapshot.cut.astimezone(UTC),
        input_hash=snapshot.input_hash,
        content_hash=content_hash,
        code_version=code_version(),
        config_version=config.config_version,
    )
    return Packet(html, content_hash, snapshot.input_hash, values["halting"])
