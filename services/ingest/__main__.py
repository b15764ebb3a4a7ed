"""``python -m services.ingest``: serve until SIGTERM; settings from the env, then the env file."""

from __future__ import annotations

from services.ingest.bootstrap import build
from services.ingest.settings import IngestSettings
from shared.logs import configure_logging
from shared.messaging.service import serve
from shared.settings import load_service_settings


def main() -> None:
    settings = load_service_settings("ingest", needs_token=True)
    configure_logging("ingest", settings.log.level)
    serve(build(settings, IngestSettings.load()), settings)


if __name__ == "__main__":
    main()
