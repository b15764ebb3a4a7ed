"""The dashboard's settings: where it listens, where the notifier is, how sessions are signed.

Read like every fragment (process environment first, then the env file). The session key is derived
from TRIALWATCH_HMAC_SECRET, so nothing new is written to the env file; the users are the notifier's
(same variables: TRIALWATCH_TOKEN, TRIALWATCH_USERS_FILE, development users, OIDC).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from shared.settings import REPO_ROOT, SettingsFragment, refuse_placeholder

DEV_STACKS = frozenset({"dev", "test"})


class DashboardSettings(SettingsFragment):
    host: str = Field(default="127.0.0.1", validation_alias="TRIALWATCH_BIND_HOST")
    port: int = Field(default=8080, validation_alias="TRIALWATCH_DASHBOARD_PORT")
    notifier_port: int = Field(default=8083, validation_alias="TRIALWATCH_NOTIFIER_PORT")
    notifier_url: str | None = Field(default=None, validation_alias="TRIALWATCH_DASHBOARD_NOTIFIER_URL")
    study_file: Path = Field(default=REPO_ROOT / "studies" / "anakinra-ad.yaml", validation_alias="TRIALWATCH_STUDY")
    monitoring_file: Path | None = Field(default=None, validation_alias="TRIALWATCH_DASHBOARD_MONITORING")
    hmac_secret: SecretStr = Field(validation_alias="TRIALWATCH_HMAC_SECRET")
    session_hours: float = Field(default=8.0, gt=0, validation_alias="TRIALWATCH_DASHBOARD_SESSION_HOURS")
    secure_cookies: bool = Field(default=False, validation_alias="TRIALWATCH_DASHBOARD_SECURE_COOKIES")
    poll_seconds: float = Field(default=5.0, gt=0, validation_alias="TRIALWATCH_DASHBOARD_POLL_SECONDS")
    users_file: Path | None = Field(default=None, validation_alias="TRIALWATCH_USERS_FILE")
    dev_users: bool | None = Field(default=None, validation_alias="TRIALWATCH_NOTIFIER_DEV_USERS")
    stack: str | None = Field(default=None, validation_alias="TRIALWATCH_STACK")

    @property
    def notifier_base(self) -> str:
        return (self.notifier_url or f"http://{self.host}:{self.notifier_port}").rstrip("/")

    @property
    def monitoring_path(self) -> Path:
        """The study's monitoring plan: beside the study file, `<name>.monitoring.yaml`."""
        return self.monitoring_file or self.study_file.with_name(self.study_file.stem + ".monitoring.yaml")

    @property
    def derives_dev_users(self) -> bool:
        return self.dev_users if self.dev_users is not None else self.stack in DEV_STACKS

    def session_secret(self) -> str:
        value = self.hmac_secret.get_secret_value()
        refuse_placeholder("TRIALWATCH_HMAC_SECRET", value)
        return value
