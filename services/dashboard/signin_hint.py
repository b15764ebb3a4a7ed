"""The one line `make up` and `make demo` print about the dashboard: where it is and how to sign in.

Development stacks sign in with a development user's token (one per role, derived from the env file's
TRIALWATCH_TOKEN by the notifier's scheme) or with TRIALWATCH_TOKEN itself (the operator, role admin).
"""

from __future__ import annotations

from collections.abc import Mapping

from shared.auth import dev_token

DEFAULT_PORT = "8080"


def dashboard_url(env: Mapping[str, str]) -> str:
    return f"http://127.0.0.1:{env.get('TRIALWATCH_DASHBOARD_PORT', DEFAULT_PORT)}/"


def signin_hint(env: Mapping[str, str]) -> str:
    """URL and a token that works; a development user only where the notifier derives them."""
    url = dashboard_url(env)
    operator = env.get("TRIALWATCH_TOKEN", "")
    if env.get("TRIALWATCH_STACK") in ("dev", "test") and operator:
        token = dev_token(operator, "safety_officer")
        return (
            f"dashboard: {url} - sign in as dev-safety_officer with token {token} "
            "(every role: python -m shared.auth; admin: TRIALWATCH_TOKEN in the env file)"
        )
    return f"dashboard: {url} - sign in with TRIALWATCH_TOKEN from the env file, a users-file token or an OIDC JWT"
