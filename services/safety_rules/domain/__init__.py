"""TrialWatch safety rules: the pure rules engine of SAFETY_RULES.md.

Public API:
    load_study(path) / packaged_study() / select_study(path, environ) -> StudyConfig
    Engine(config, store).process(events) -> list[Signal]
    Engine(config, store).advance_clock(now) -> list[Signal]
    StateStore (port), InMemoryStateStore (replay), ParticipantState / StudyState (to_json, from_json)
"""

from services.safety_rules.domain.config import (
    STUDY_ENV,
    StudyConfigError,
    load_study,
    packaged_study,
    parse_study,
    select_study,
)
from services.safety_rules.domain.config_model import StudyConfig
from services.safety_rules.domain.engine import Engine
from services.safety_rules.domain.state import ParticipantState
from services.safety_rules.domain.store import InMemoryStateStore, StateStore
from services.safety_rules.domain.study_state import StudyState

__all__ = [
    "STUDY_ENV",
    "Engine",
    "InMemoryStateStore",
    "ParticipantState",
    "StateStore",
    "StudyConfig",
    "StudyConfigError",
    "StudyState",
    "load_study",
    "packaged_study",
    "parse_study",
    "select_study",
]
