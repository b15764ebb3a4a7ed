"""Loads the monitoring plan from the study file and its `.monitoring.yaml` companion."""

from __future__ import annotations

from pathlib import Path

import yaml

from services.dashboard.domain.plan import MonitoringPlan, build_plan
from shared.settings import REPO_ROOT

DEFAULT_STUDY = REPO_ROOT / "studies" / "anakinra-ad.yaml"


def monitoring_path(study_file: Path) -> Path:
    return study_file.with_name(study_file.stem + ".monitoring.yaml")


def load_plan(study_file: Path = DEFAULT_STUDY, monitoring_file: Path | None = None) -> MonitoringPlan:
    study = yaml.safe_load(study_file.read_text(encoding="utf-8"))
    monitoring = yaml.safe_load((monitoring_file or monitoring_path(study_file)).read_text(encoding="utf-8"))
    return build_plan(study, monitoring)
