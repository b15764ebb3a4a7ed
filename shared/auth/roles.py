"""The roles of TrialWatch's users (issue #5): who is told, who may acknowledge, who only reads."""

from __future__ import annotations

from typing import Literal, get_args

Role = Literal["safety_officer", "medical_monitor", "investigator", "dsmb_chair", "dmc_member", "sponsor_pv", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
