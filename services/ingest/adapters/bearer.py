"""Bearer-token check for ingest's HTTP API (INTERFACES §5); health and metrics stay open.

Each route accepts its source system's token and the admin token. Every configured token is compared
in constant time, whichever matches, so the answer's timing tells nothing about the tokens.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Header, HTTPException, status
from pydantic import SecretStr


def require_bearer(*accepted: SecretStr) -> Callable[[str | None], Awaitable[None]]:
    secrets = [token.get_secret_value().encode() for token in accepted]
    if not secrets:
        raise ValueError("a protected route needs at least one token")

    async def check(authorization: Annotated[str | None, Header()] = None) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        presented = token.strip().encode()
        matches = [hmac.compare_digest(presented, secret) for secret in secrets]
        if scheme.lower() != "bearer" or not any(matches):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="missing or invalid bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check
