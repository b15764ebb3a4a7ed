"""The broker's classpath: jars copied from Maven Central into ``var/kafka-libs/<pom hash>/``."""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import zipfile
from pathlib import Path

from trialwatch.devstack import apt
from trialwatch.devstack.console import DevstackError
from trialwatch.devstack.paths import KAFKA_JARS_LIST, KAFKA_LIBS_CACHE, KAFKA_POM

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies"
STORAGE_TOOL = "kafka/tools/StorageTool.class"
_DONE = ".complete"


def pom_hash(pom: Path = KAFKA_POM) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()[:16]


def libs_dir(pom: Path = KAFKA_POM) -> Path:
    return KAFKA_LIBS_CACHE / pom_hash(pom)


def cached(pom: Path = KAFKA_POM) -> bool:
    return (libs_dir(pom) / _DONE).exists()


def _fetch(pom: Path, target: Path) -> None:
    mvn = apt.ensure_command("mvn", ["maven"])
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    argv = [mvn, "-B", "-q", "-f", str(pom), DEPENDENCY_PLUGIN]
    argv += [f"-DoutputDirectory={partial}", "-DincludeScope=runtime"]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-20:])
        raise DevstackError(f"maven could not fetch the Kafka jars (exit {proc.returncode}):\n{tail}")
    check_storage_tool(partial)
    (partial / _DONE).write_text(pom_hash(pom) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


def ensure_libs(pom: Path = KAFKA_POM) -> tuple[Path, bool]:
    """Jar folder for ``pom``; fetched (under a lock) if missing. Returns (folder, fetched)."""
    target = libs_dir(pom)
    if cached(pom):
        return target, False
    KAFKA_LIBS_CACHE.mkdir(parents=True, exist_ok=True)
    with (KAFKA_LIBS_CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if cached(pom):
            return target, False
        _fetch(pom, target)
    write_jar_list(target)
    return target, True


def jar_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.jar"))


def write_jar_list(folder: Path, listing: Path = KAFKA_JARS_LIST) -> None:
    """Keep the commit-able list of resolved jars in step with the pom."""
    text = "# Resolved by maven-dependency-plugin copy-dependencies from deploy/kafka/pom.xml\n"
    text += "".join(f"{name}\n" for name in jar_names(folder))
    if not listing.exists() or listing.read_text() != text:
        listing.write_text(text)


def kafka_jar(folder: Path) -> Path:
    jars = sorted(folder.glob("kafka_2.13-*.jar"))
    if not jars:
        raise DevstackError(f"no kafka_2.13-*.jar in {folder}")
    return jars[-1]


def kafka_version(folder: Path) -> str:
    return kafka_jar(folder).stem.removeprefix("kafka_2.13-")


def check_storage_tool(folder: Path) -> None:
    jar = kafka_jar(folder)
    with zipfile.ZipFile(jar) as archive:
        if STORAGE_TOOL not in archive.namelist():
            raise DevstackError(f"{jar.name} has no kafka.tools.StorageTool; did Kafka move it?")


def classpath(folder: Path) -> str:
    return f"{folder}/*"
