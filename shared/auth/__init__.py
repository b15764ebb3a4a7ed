"""Authentication shared by the services with an HTTP API for people (notifier, dashboard)."""

from shared.auth.roles import ROLES, Role
from shared.auth.settings import OidcSettings
from shared.auth.tokens import Authenticator, AuthError, OidcVerifier, Principal, dev_token, static_tokens

__all__ = [
    "ROLES",
    "AuthError",
    "Authenticator",
    "OidcSettings",
    "OidcVerifier",
    "Principal",
    "Role",
    "dev_token",
    "static_tokens",
]
