"""``python -m services.smtp_sink``: the development SMTP sink, until SIGTERM (uvicorn handles signals)."""

from __future__ import annotations

import uvicorn

from services.smtp_sink.server import create_app
from services.smtp_sink.settings import SinkSettings
from shared.db import create_engine
from shared.logs import configure_logging
from shared.settings import DatabaseSettings, LogSettings


def main() -> None:
    settings = SinkSettings.load()
    configure_logging("smtp_sink", LogSettings.load().level)
    # No pre-ping (two round trips per message, a third of the sink's CPU in a flood): a message whose
    # transaction fails on a dropped connection is answered 451, and the sender retries it.
    engine = create_engine(DatabaseSettings.load(), application_name="trialwatch-smtp-sink", pre_ping=False)
    uvicorn.run(
        create_app(settings, engine),
        host=settings.host,
        port=settings.health_port,
        log_config=None,
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
