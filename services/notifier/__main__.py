"""``python -m services.notifier``: serve until SIGTERM; settings from the env, then the env file."""

from __future__ import annotations

from services.notifier.bootstrap import build
from services.notifier.settings import NotifierSettings, SmtpSettings
from shared.auth import OidcSettings
from shared.logs import configure_logging
from shared.messaging.service import serve
from shared.settings import load_service_settings


def main() -> None:
    settings = load_service_settings("notifier", needs_token=True)
    configure_logging("notifier", settings.log.level)
    serve(build(settings, NotifierSettings.load(), SmtpSettings.load(), OidcSettings.load()), settings)


if __name__ == "__main__":
    main()
