"""``python -m shared.auth``: the development users' tokens of the current env file (dev and test stacks)."""

from __future__ import annotations

import sys

from shared.auth.roles import ROLES
from shared.auth.tokens import dev_token
from shared.settings import ApiTokenSettings


def main() -> None:
    operator = ApiTokenSettings.load().token.get_secret_value()
    for role in ROLES:
        sys.stdout.write(f"dev-{role}\t{dev_token(operator, role)}\n")


if __name__ == "__main__":
    main()
