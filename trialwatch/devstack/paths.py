"""Where the local stack keeps its files: everything mutable lives under ``var/`` (git-ignored)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"
KAFKA_DEPLOY_DIR = DEPLOY_DIR / "kafka"
KAFKA_POM = KAFKA_DEPLOY_DIR / "pom.xml"
KAFKA_LOG4J = KAFKA_DEPLOY_DIR / "log4j2.properties"
KAFKA_JARS_LIST = KAFKA_DEPLOY_DIR / "jars.txt"
ALEMBIC_INI = DEPLOY_DIR / "alembic.ini"
VAR_ROOT = REPO_ROOT / "var"
KAFKA_LIBS_CACHE = VAR_ROOT / "kafka-libs"

STACKS = ("dev", "test")


@dataclass(frozen=True)
class StackPaths:
    """Per-stack directories. ``var_dir`` comes from TRIALWATCH_VAR_DIR (default ``var/<stack>``)."""

    stack: str
    var_dir: Path

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    @property
    def run_dir(self) -> Path:
        return self.var_dir / "run"

    @property
    def kafka_dir(self) -> Path:
        return self.var_dir / "kafka"

    @property
    def kafka_data(self) -> Path:
        return self.kafka_dir / "data"

    @property
    def pg_dir(self) -> Path:
        return self.var_dir / "pg"

    def log(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def ensure(self) -> None:
        for folder in (self.log_dir, self.run_dir, self.kafka_dir):
            folder.mkdir(parents=True, exist_ok=True)


def default_var_dir(stack: str) -> Path:
    return VAR_ROOT / stack


def stack_paths(stack: str, env: dict[str, str]) -> StackPaths:
    raw = env.get("TRIALWATCH_VAR_DIR") or str(default_var_dir(stack))
    var_dir = Path(raw)
    if not var_dir.is_absolute():
        var_dir = REPO_ROOT / var_dir
    return StackPaths(stack=stack, var_dir=var_dir)
