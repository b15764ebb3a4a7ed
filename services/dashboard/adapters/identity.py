"""Who signs in: the notifier's users, tokens and roles (one scheme for both front doors).

The dashboard accepts exactly the credentials the notifier accepts - the operator token, the users
file, the development users of the dev and test stacks, OIDC JWTs - by building the notifier's own
`Authenticator` from the same settings. Acting (acknowledging) is then done through the notifier's
API with the user's own token, so the notifier's routing decides who may acknowledge what.
"""

from __future__ import annotations

from services.dashboard.settings import DashboardSettings
from shared.auth import Authenticator, AuthError, OidcSettings, OidcVerifier, Principal, static_tokens
from shared.settings import ApiTokenSettings

__all__ = ["AuthError", "Principal", "build_authenticator"]


def build_authenticator(settings: DashboardSettings, api: ApiTokenSettings, oidc: OidcSettings) -> Authenticator:
    tokens = static_tokens(api.token.get_secret_value(), settings.users_file, settings.derives_dev_users)
    return Authenticator(tokens, OidcVerifier(oidc) if oidc.enabled else None)
