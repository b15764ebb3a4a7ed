"""Settings of the OIDC bearer-token check shared by the notifier API and the dashboard."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.settings import SettingsFragment


class OidcSettings(SettingsFragment):
    """OIDC bearer JWTs (RS256), verified against a JWKS file or one PEM public key; roles from a claim."""

    jwks_file: Path | None = Field(default=None, validation_alias="TRIALWATCH_OIDC_JWKS_FILE")
    public_key_file: Path | None = Field(default=None, validation_alias="TRIALWATCH_OIDC_PUBLIC_KEY_FILE")
    issuer: str | None = Field(default=None, validation_alias="TRIALWATCH_OIDC_ISSUER")
    audience: str | None = Field(default=None, validation_alias="TRIALWATCH_OIDC_AUDIENCE")
    roles_claim: str = Field(default="roles", validation_alias="TRIALWATCH_OIDC_ROLES_CLAIM")
    user_claim: str = Field(default="sub", validation_alias="TRIALWATCH_OIDC_USER_CLAIM")

    @property
    def enabled(self) -> bool:
        return self.jwks_file is not None or self.public_key_file is not None
