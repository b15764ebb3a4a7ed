"""Composition root of the dashboard: the only place that turns settings into adapters."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI

from services.dashboard.adapters.identity import build_authenticator
from services.dashboard.adapters.notifier_client import NotifierClient
from services.dashboard.adapters.plan_files import load_plan
from services.dashboard.adapters.sessions import SessionCodec
from services.dashboard.app import create_app
from services.dashboard.context import DashboardContext, DashboardMetrics
from services.dashboard.settings import DashboardSettings
from shared.auth import OidcSettings
from shared.db import create_engine
from shared.settings import ApiTokenSettings, DatabaseSettings


def now() -> datetime:
    return datetime.now(UTC)


def build(settings: DashboardSettings, database: DatabaseSettings) -> FastAPI:
    context = DashboardContext(
        settings=settings,
        engine=create_engine(database, application_name="trialwatch-dashboard"),
        plan=load_plan(settings.study_file, settings.monitoring_path),
        codec=SessionCodec(settings.session_secret(), int(settings.session_hours * 3600)),
        authenticator=build_authenticator(settings, ApiTokenSettings.load(), OidcSettings.load()),
        notifier=NotifierClient(settings.notifier_base),
        metrics=DashboardMetrics(),
        clock=now,
    )
    return create_app(context)
