"""``python -m services.safety_rules``: serve until SIGTERM; settings from the env, then the env file."""

from __future__ import annotations

from services.safety_rules.bootstrap import build
from shared.logs import configure_logging
from shared.messaging.service import serve
from shared.settings import load_service_settings


def main() -> None:
    settings = load_service_settings("safety_rules", needs_token=False)
    configure_logging("safety_rules", settings.log.level)
    serve(build(settings), settings)


if __name__ == "__main__":
    main()
