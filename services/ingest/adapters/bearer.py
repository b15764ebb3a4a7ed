"""Bearer-token check for ingest's HTTP API (INTERFACES §5); health and metrics stay open."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Header, HTTPException, status
from pydantic import SecretStr


def require_bearer(expected: SecretStr) -> Callable[[str | None], Awaitable[None]]:
    secret = expected.get_secret_value().encode()

    async def check(authorization: Annotated[str | None, Header()] = None) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), secret):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                detail="missing or invalid bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )

    return check
