"""Database plumbing shared by the services: declarative base, engine and session factory, table mixins."""

from shared.db.base import NAMING_CONVENTION, SERVICE_SCHEMAS, Base
from shared.db.engine import create_engine, create_session_factory, live_driver, ping
from shared.db.mixins import OutboxMixin, ProcessedEventMixin, outbox_table_args

__all__ = [
    "NAMING_CONVENTION",
    "SERVICE_SCHEMAS",
    "Base",
    "OutboxMixin",
    "ProcessedEventMixin",
    "create_engine",
    "create_session_factory",
    "live_driver",
    "outbox_table_args",
    "ping",
]
