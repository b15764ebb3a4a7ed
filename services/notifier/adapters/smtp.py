"""E-mail over SMTP (aiosmtplib): STARTTLS, implicit TLS and authentication are configuration.

The Message-ID is the delivery's, fixed when it was queued, so a message sent twice after a crash is
recognisably the same message. 4xx answers and connection problems are transient, 5xx permanent.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from services.notifier.adapters.channels import PermanentDeliveryError, TransientDeliveryError
from services.notifier.adapters.tables import Delivery
from services.notifier.settings import SmtpSettings

PERMANENT_FROM = 500


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


class SmtpSender:
    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    async def send(self, delivery: Delivery) -> None:
        settings = self._settings
        password = settings.password.get_secret_value() if settings.password else None
        try:
            await aiosmtplib.send(
                email_message(delivery, settings.sender),
                hostname=settings.host,
                port=settings.port,
                username=settings.username,
                password=password,
                start_tls=settings.starttls,
                use_tls=settings.implicit_tls,
                timeout=settings.timeout,
            )
        except aiosmtplib.SMTPResponseException as error:
            kind = PermanentDeliveryError if error.code >= PERMANENT_FROM else TransientDeliveryError
            raise kind(f"SMTP {error.code}: {error.message}") from error
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [refusal.code for refusal in error.recipients]
            kind = PermanentDeliveryError if min(codes, default=0) >= PERMANENT_FROM else TransientDeliveryError
            raise kind(f"SMTP recipients refused: {error}") from error
        except (aiosmtplib.SMTPException, OSError) as error:
            raise TransientDeliveryError(f"SMTP {type(error).__name__}: {error}") from error
