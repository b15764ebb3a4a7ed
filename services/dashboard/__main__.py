"""``python -m services.dashboard``: serve the DMC dashboard until SIGTERM (settings: env, then env file)."""

from __future__ import annotations

import uvicorn

from services.dashboard.bootstrap import build
from services.dashboard.settings import DashboardSettings
from shared.logs import configure_logging
from shared.settings import DatabaseSettings, LogSettings


def main() -> None:
    settings = DashboardSettings.load()
    log = LogSettings.load()
    configure_logging("dashboard", log.level)
    app = build(settings, DatabaseSettings.load())
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=log.level.lower(), access_log=False)


if __name__ == "__main__":
    main()
