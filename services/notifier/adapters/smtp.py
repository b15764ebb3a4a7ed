"""E-mail over SMTP (aiosmtplib): STARTTLS, implicit TLS, a private CA and authentication are configuration.

The Message-ID is the delivery's, fixed when it was queued. The point of no return is the DATA command:
MAIL FROM and RCPT TO leave nothing at the server, which accepts a message only at the end of its data,
so the in-doubt marker is committed just before DATA. A reply code is definite at any point (4xx
transient, 5xx permanent: not delivered); a connection lost or timed out after DATA was sent leaves the
message in doubt. Connection problems before it are transient.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate
from typing import Literal

import aiosmtplib
from aiosmtplib.response import SMTPResponse
from aiosmtplib.typing import Default

from services.notifier.adapters.channels import (
    InDoubtDeliveryError,
    PermanentDeliveryError,
    PointOfNoReturn,
    TransientDeliveryError,
)
from services.notifier.adapters.tables import Delivery
from services.notifier.settings import SmtpSettings

PERMANENT_FROM = 500
QUIT_TIMEOUT = 1.0
REPLIES_AFTER_THE_MARKER = 2  # DATA's 354, then the answer to the end of data


def email_message(delivery: Delivery, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = delivery.recipient
    message["Subject"] = delivery.message["subject"]
    message["Message-ID"] = delivery.message_id
    message["Date"] = formatdate(usegmt=True)
    message["X-TrialWatch-Delivery"] = str(delivery.id)
    message["X-TrialWatch-Alerts"] = ", ".join(delivery.alert_ids)
    message.set_content(delivery.message["text"])
    return message


class _MarkingClient(aiosmtplib.SMTP):
    """An SMTP client that commits the in-doubt marker just before DATA, and knows whether it did."""

    def __init__(self, point_of_no_return: PointOfNoReturn, **options: object) -> None:
        super().__init__(**options)  # type: ignore[arg-type]
        self._point_of_no_return = point_of_no_return
        self.passed_point_of_no_return = False

    async def data(
        self,
        message: str | bytes,
        /,
        *,
        timeout: float | Literal[Default.token] | None = Default.token,  # noqa: ASYNC109 - aiosmtplib's signature
    ) -> SMTPResponse:
        await self._point_of_no_return()
        self.passed_point_of_no_return = True
        return await super().data(message, timeout=timeout)


class SmtpSender:
    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    @property
    def longest_wait_after_the_point_of_no_return(self) -> float:
        return self._settings.timeout * REPLIES_AFTER_THE_MARKER + QUIT_TIMEOUT

    def _client(self, point_of_no_return: PointOfNoReturn) -> _MarkingClient:
        settings = self._settings
        return _MarkingClient(
            point_of_no_return,
            hostname=settings.host,
            port=settings.port,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            start_tls=settings.starttls,
            use_tls=settings.implicit_tls,
            cert_bundle=str(settings.ca_file) if settings.ca_file else None,
            timeout=settings.timeout,
        )

    async def send(self, delivery: Delivery, point_of_no_return: PointOfNoReturn) -> str:
        """Returns the server's reply to the end of data (250 ...)."""
        client = self._client(point_of_no_return)
        try:
            await client.connect()
            _, reply = await client.send_message(email_message(delivery, self._settings.sender))
        except aiosmtplib.SMTPResponseException as error:
            kind = PermanentDeliveryError if error.code >= PERMANENT_FROM else TransientDeliveryError
            raise kind(f"SMTP {error.code}: {error.message}") from error
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [refusal.code for refusal in error.recipients]
            kind = PermanentDeliveryError if min(codes, default=0) >= PERMANENT_FROM else TransientDeliveryError
            raise kind(f"SMTP recipients refused: {error}") from error
        except (aiosmtplib.SMTPException, OSError) as error:
            if client.passed_point_of_no_return:
                raise InDoubtDeliveryError(f"SMTP {type(error).__name__} after DATA: {error}") from error
            raise TransientDeliveryError(f"SMTP {type(error).__name__}: {error}") from error
        finally:
            await _hang_up(client)
        return f"250 {reply}"


async def _hang_up(client: aiosmtplib.SMTP) -> None:
    """QUIT, briefly: the outcome is known already, and the lease must outlast the wait after DATA."""
    if not client.is_connected:
        return
    try:
        await client.quit(timeout=QUIT_TIMEOUT)
    except (aiosmtplib.SMTPException, OSError):
        client.close()
