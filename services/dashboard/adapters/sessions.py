"""Signed, encrypted session cookies and CSRF tokens.

The cookie holds the user, their roles, a CSRF secret and their bearer token (needed to act through
the notifier's API on their behalf), sealed with Fernet (AES-CBC + HMAC-SHA256, with a timestamp for
expiry) under a key derived from TRIALWATCH_HMAC_SECRET. HttpOnly and SameSite=Strict; Secure when
configured. Every POST carries the session's CSRF token in a form field; the sign-in form, before any
session exists, carries a token bound to a short-lived pre-session cookie (double submit).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken

SESSION_COOKIE = "tw_session"
LOGIN_COOKIE = "tw_signin"
KEY_CONTEXT = b"trialwatch/dashboard-session/v1"


@dataclass(frozen=True)
class Session:
    user: str
    roles: tuple[str, ...]
    token: str
    csrf: str

    def may_act(self) -> bool:
        """Any role beyond reading; the notifier's routing still decides per alert."""
        return any(role != "dmc_member" for role in self.roles)


class SessionCodec:
    def __init__(self, secret: str, max_age_seconds: int) -> None:
        key = hmac.new(secret.encode(), KEY_CONTEXT, hashlib.sha256).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(key))
        self._login_key = hmac.new(secret.encode(), KEY_CONTEXT + b"/signin", hashlib.sha256).digest()
        self.max_age = max_age_seconds

    def seal(self, user: str, roles: tuple[str, ...], token: str) -> tuple[str, Session]:
        session = Session(user, roles, token, secrets.token_urlsafe(24))
        body = json.dumps({"u": user, "r": list(roles), "t": token, "c": session.csrf}).encode()
        return self._fernet.encrypt(body).decode(), session

    def open(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            data = json.loads(self._fernet.decrypt(cookie.encode(), ttl=self.max_age))
        except (InvalidToken, ValueError):
            return None
        return Session(str(data["u"]), tuple(data["r"]), str(data["t"]), str(data["c"]))

    def login_nonce(self) -> str:
        return secrets.token_urlsafe(24)

    def login_csrf(self, nonce: str) -> str:
        return hmac.new(self._login_key, nonce.encode(), hashlib.sha256).hexdigest()

    def login_csrf_valid(self, nonce: str | None, submitted: str | None) -> bool:
        return bool(nonce and submitted) and hmac.compare_digest(self.login_csrf(str(nonce)), str(submitted))


def csrf_valid(session: Session, submitted: str | None) -> bool:
    return submitted is not None and hmac.compare_digest(session.csrf, submitted)
