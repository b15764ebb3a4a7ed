"""One git-ignored env file per stack: ``.env`` (dev) and ``.env.test`` (test).

Generated on first use with the INTERFACES §5 defaults (test: every port shifted to 2xxxx so both
stacks run side by side) and fresh random secrets; an existing file is never overwritten.
``TRIALWATCH_ENV_FILE`` overrides the path. A ``DATABASE_URL`` in the process environment wins over
the file's (and tells the devstack not to run PostgreSQL itself).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import quote

from trialwatch.devstack.paths import REPO_ROOT, STACKS, default_var_dir

ENV_FILE_VAR = "TRIALWATCH_ENV_FILE"
ENV_FILE_NAMES = {"dev": ".env", "test": ".env.test"}

# INTERFACES §5 defaults (dev); the test stack uses the values on the right.
PORTS: dict[str, tuple[int, int]] = {
    "TRIALWATCH_KAFKA_PORT": (19092, 29092),
    "TRIALWATCH_KAFKA_CONTROLLER_PORT": (19093, 29093),
    "TRIALWATCH_PG_PORT": (5432, 25432),
    "TRIALWATCH_MLLP_PORT": (2575, 22575),
    "TRIALWATCH_INGEST_PORT": (8081, 28081),
    "TRIALWATCH_RULES_PORT": (8082, 28082),
    "TRIALWATCH_NOTIFIER_PORT": (8083, 28083),
    "TRIALWATCH_DASHBOARD_PORT": (8080, 28080),
    "TRIALWATCH_SMTP_PORT": (1025, 21025),
}
SOURCES = ("HL7", "FHIR", "RECORDS")
HOST = "127.0.0.1"
DATABASE = "trialwatch"
PG_USER = "trialwatch"


class EnvFileError(RuntimeError):
    """The env file is unreadable or belongs to another stack."""


def env_path(stack: str) -> Path:
    override = os.environ.get(ENV_FILE_VAR)
    if override:
        return Path(override).expanduser().resolve()
    return REPO_ROOT / ENV_FILE_NAMES[stack]


def database_url(user: str, password: str, port: int | str, database: str = DATABASE) -> str:
    return f"postgresql+asyncpg://{quote(user)}:{quote(password, safe='')}@{HOST}:{port}/{database}"


def defaults(stack: str) -> dict[str, str]:
    """A fresh settings dict for ``stack`` with new random secrets."""
    if stack not in STACKS:
        raise EnvFileError(f"unknown stack {stack!r} (expected one of {', '.join(STACKS)})")
    col = STACKS.index(stack)
    ports = {name: str(pair[col]) for name, pair in PORTS.items()}
    values = {"TRIALWATCH_STACK": stack, "TRIALWATCH_BIND_HOST": HOST}
    values["TRIALWATCH_KAFKA_BOOTSTRAP"] = f"{HOST}:{ports.pop('TRIALWATCH_KAFKA_PORT')}"
    values.update(ports)
    password = secrets.token_urlsafe(24)
    values.update(
        TRIALWATCH_PG_USER=PG_USER,
        TRIALWATCH_PG_PASSWORD=password,
        TRIALWATCH_PG_DATABASE=DATABASE,
        DATABASE_URL=database_url(PG_USER, password, values["TRIALWATCH_PG_PORT"]),
        TRIALWATCH_TOKEN=secrets.token_urlsafe(32),
        TRIALWATCH_HMAC_SECRET=secrets.token_hex(32),
        TRIALWATCH_VAR_DIR=str(default_var_dir(stack)),
    )
    values.update({f"TRIALWATCH_SOURCE_TOKEN_{src}": secrets.token_urlsafe(32) for src in SOURCES})
    return values


def render(values: dict[str, str]) -> str:
    head = [
        f"# TrialWatch local settings for stack {values['TRIALWATCH_STACK']!r}.",
        "# Generated once by `python -m trialwatch.devstack`; git-ignored; holds development secrets.",
        "# Edit freely (e.g. ports); it is never overwritten. Delete it to regenerate.",
    ]
    return "\n".join([*head, *(f"{key}={val}" for key, val in values.items())]) + "\n"


def parse(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, val = line.removeprefix("export ").partition("=")
        if not sep:
            raise EnvFileError(f"not KEY=VALUE: {raw!r}")
        values[key.strip()] = val.strip().strip("'\"")
    return values


def ensure(stack: str) -> tuple[Path, bool]:
    """Create the stack's env file if missing. Returns (path, created)."""
    path = env_path(stack)
    values = defaults(stack)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path, False
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(render(values))
    return path, True


def load(stack: str, create: bool = True) -> dict[str, str]:
    """Settings of ``stack`` from its env file (created if missing); DATABASE_URL from env wins."""
    path = ensure(stack)[0] if create else env_path(stack)
    if not path.exists():
        raise EnvFileError(f"{path} missing; run `python -m trialwatch.devstack --stack {stack} up`")
    values = parse(path.read_text(encoding="utf-8"))
    found = values.get("TRIALWATCH_STACK")
    if found != stack:
        raise EnvFileError(f"{path} is for stack {found!r}, not {stack!r} (check {ENV_FILE_VAR})")
    if os.environ.get("DATABASE_URL"):
        values["DATABASE_URL"] = os.environ["DATABASE_URL"]
    return values


def external_database() -> bool:
    """True when the process environment names a database the devstack must not manage."""
    return bool(os.environ.get("DATABASE_URL"))
