"""What `make up` / `make demo` print about the dashboard is a URL and a token the sign-in accepts."""

from __future__ import annotations

import re

from services.dashboard.signin_hint import signin_hint
from shared.auth import Authenticator, static_tokens

OPERATOR = "an-operator-token-of-some-length"


def test_dev_stack_hint_names_the_url_and_a_working_safety_officer_token() -> None:
    hint = signin_hint({"TRIALWATCH_STACK": "dev", "TRIALWATCH_TOKEN": OPERATOR, "TRIALWATCH_DASHBOARD_PORT": "18080"})
    assert "http://127.0.0.1:18080/" in hint
    token = re.search(r"with token (\S+)", hint)
    assert token is not None
    principal = Authenticator(static_tokens(OPERATOR, None, dev_users=True), None).principal(f"Bearer {token.group(1)}")
    assert (principal.user, principal.roles) == ("dev-safety_officer", frozenset({"safety_officer"}))


def test_production_hint_prints_no_token() -> None:
    hint = signin_hint({"TRIALWATCH_STACK": "prod", "TRIALWATCH_TOKEN": OPERATOR})
    assert OPERATOR not in hint and "http://127.0.0.1:8080/" in hint
