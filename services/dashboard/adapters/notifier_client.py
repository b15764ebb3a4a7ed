"""Acknowledgements go through the notifier's API, with the signed-in user's own bearer token, so the
routing's rights, the state machine and the audit trail stay in one place (services/notifier)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    status: int
    message: str


class NotifierClient:
    def __init__(self, base_url: str) -> None:
        self._client = httpx.AsyncClient(base_url=base_url, timeout=TIMEOUT_SECONDS)

    async def acknowledge(self, alert_id: str, token: str, comment: str | None) -> ActionResult:
        try:
            response = await self._client.post(
                f"/v1/alerts/{alert_id}/ack",
                json={"comment": comment or None},
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.HTTPError as error:
            return ActionResult(False, 502, f"notifier unreachable: {type(error).__name__}")
        if response.is_success:
            return ActionResult(True, response.status_code, "acknowledged")
        try:
            detail = str(response.json().get("detail", response.text))
        except ValueError:
            detail = response.text
        return ActionResult(False, response.status_code, detail)

    async def close(self) -> None:
        await self._client.aclose()
