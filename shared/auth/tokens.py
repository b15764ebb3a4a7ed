"""Who is calling the notifier API or the dashboard: a static bearer token mapped to a user and roles, or an OIDC JWT.

Static tokens come from three places, all compared by their SHA-256 (a dict lookup, no timing to learn):
- ``TRIALWATCH_TOKEN`` (the operator/CLI token of INTERFACES §5): user ``operator``, role ``admin``;
- ``TRIALWATCH_USERS_FILE``: YAML ``users: [{user, roles, token_sha256}]`` (only hashes on disk);
- development users, one per role (``dev-<role>``), on the dev and test stacks only: their tokens are
  derived from the env file's TRIALWATCH_TOKEN (``dev_token``), so nothing new is written to the env file
  and ``python -m shared.auth`` prints them.
OIDC: an RS256 JWT verified against the configured JWKS file or PEM public key, issuer and audience;
roles from a claim (a dotted path such as ``realm_access.roles``), unknown role names ignored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import jwt
import yaml

from shared.auth.roles import ROLES, Role
from shared.auth.settings import OidcSettings

DEV_USER_CONTEXT = b"trialwatch/dev-user/"


class AuthError(Exception):
    """Missing, unknown, expired or unverifiable credentials."""


@dataclass(frozen=True)
class Principal:
    user: str
    roles: frozenset[Role]
    via: str


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def dev_token(operator_token: str, role: Role) -> str:
    digest = hmac.new(operator_token.encode(), DEV_USER_CONTEXT + role.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _roles(values: Any) -> frozenset[Role]:
    found = values if isinstance(values, list) else [values]
    return frozenset(cast(Role, value) for value in found if value in ROLES)


def static_tokens(operator_token: str, users_file: Path | None, dev_users: bool) -> dict[str, Principal]:
    """SHA-256 of each token -> its principal."""
    tokens = {_sha256(operator_token): Principal("operator", frozenset({"admin"}), "token")}
    if dev_users:
        for role in ROLES:
            tokens[_sha256(dev_token(operator_token, role))] = Principal(f"dev-{role}", frozenset({role}), "token")
    if users_file is not None:
        data = yaml.safe_load(users_file.read_text(encoding="utf-8")) or {}
        for entry in data.get("users", []):
            roles = _roles(entry.get("roles", []))
            if not roles or len(str(entry.get("token_sha256", ""))) != 64:
                raise ValueError(f"{users_file}: user {entry.get('user')!r} needs known roles and a token_sha256")
            tokens[str(entry["token_sha256"]).lower()] = Principal(str(entry["user"]), roles, "token")
    return tokens


class OidcVerifier:
    def __init__(self, settings: OidcSettings) -> None:
        self._settings = settings
        self._jwks = jwt.PyJWKSet.from_json(settings.jwks_file.read_text()) if settings.jwks_file else None
        self._pem = settings.public_key_file.read_bytes() if settings.public_key_file else None

    def _key(self, token: str) -> Any:
        if self._jwks is None:
            return self._pem
        kid = jwt.get_unverified_header(token).get("kid")
        matching = [key for key in self._jwks.keys if kid is None or key.key_id == kid]
        if not matching:
            raise AuthError("no JWKS key matches the token's kid")
        return matching[0].key

    def verify(self, token: str) -> Principal:
        settings = self._settings
        try:
            claims = jwt.decode(
                token,
                self._key(token),
                algorithms=["RS256"],
                audience=settings.audience,
                issuer=settings.issuer,
                options={"require": ["exp", settings.user_claim]},
            )
        except jwt.PyJWTError as error:
            raise AuthError(f"invalid token: {error}") from error
        value: Any = claims
        for part in settings.roles_claim.split("."):
            value = value.get(part, []) if isinstance(value, Mapping) else []
        return Principal(str(claims[settings.user_claim]), _roles(value), "oidc")


class Authenticator:
    def __init__(self, tokens: Mapping[str, Principal], oidc: OidcVerifier | None) -> None:
        self._tokens = dict(tokens)
        self._oidc = oidc

    def principal(self, authorization: str | None) -> Principal:
        scheme, _, token = (authorization or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError("missing bearer token")
        found = self._tokens.get(_sha256(token))
        if found is not None:
            return found
        if self._oidc is not None and token.count(".") == 2:
            return self._oidc.verify(token)
        raise AuthError("unknown bearer token")
