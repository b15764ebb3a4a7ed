"""The sink's settings: where it listens for SMTP and for its health check.

``TRIALWATCH_SMTP_HEALTH_PORT`` is optional: env files written before the sink existed lack it, and the
default (the SMTP port + 1: 1026 on the dev stack, 21026 on the test stack) keeps both stacks apart.
"""

from __future__ import annotations

from pydantic import Field

from shared.settings import SettingsFragment

HEALTH_PORT_OFFSET = 1


def default_health_port(smtp_port: int) -> int:
    return smtp_port + HEALTH_PORT_OFFSET


class SinkSettings(SettingsFragment):
    host: str = Field(default="127.0.0.1", validation_alias="TRIALWATCH_BIND_HOST")
    smtp_port: int = Field(default=1025, validation_alias="TRIALWATCH_SMTP_PORT")
    health_port_setting: int | None = Field(default=None, validation_alias="TRIALWATCH_SMTP_HEALTH_PORT")
    max_message_bytes: int = Field(default=10 << 20, ge=1024, validation_alias="TRIALWATCH_SMTP_SINK_MAX_BYTES")

    @property
    def health_port(self) -> int:
        return self.health_port_setting or default_health_port(self.smtp_port)
