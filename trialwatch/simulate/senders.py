"""Sending: every batch is first written to the sent directory (numbered in send order, so that `trialwatch
replay DIR/*` sees exactly what the stack saw), then sent as `trialwatch send` sends a file: HL7 over MLLP as
the lab system, FHIR and records over HTTP as the EDC."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from trialwatch.send import Report, Target, http_client, send_file
from trialwatch.simulate.plan import Format, Transmission

EXTENSIONS: dict[Format, str] = {"hl7v2": "hl7", "fhir": "fhir.ndjson", "records": "ndjson"}
SOURCES: dict[Format, str] = {"hl7v2": "lab", "fhir": "edc-fhir", "records": "edc"}
HTTP_BATCH = 500


def file_bytes(fmt: Format, payloads: Sequence[bytes]) -> bytes:
    if fmt == "hl7v2":
        return b"".join(payloads)
    return b"".join(payload + b"\n" for payload in payloads)


@dataclass(frozen=True)
class SentFile:
    path: Path
    data: bytes
    batch: Sequence[Transmission]


class SentDirectory:
    """The files of one run, numbered in send order; a new run starts from an empty directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        self.count = 0

    def write(self, name: str, fmt: Format, data: bytes, batch: Sequence[Transmission] = ()) -> SentFile:
        self.count += 1
        path = self.directory / f"{self.count:05d}-{name}.{EXTENSIONS[fmt]}"
        path.write_bytes(data)
        return SentFile(path, data, batch)

    def batch(self, batch: Sequence[Transmission]) -> SentFile:
        first = batch[0]
        name = f"day{first.study_day:03d}-{SOURCES[first.fmt]}"
        return self.write(name, first.fmt, file_bytes(first.fmt, [item.payload for item in batch]), batch)

    def files(self) -> list[Path]:
        return sorted(self.directory.iterdir())


class Sender:
    """One HTTP client for the run; MLLP opens a connection per file, as `trialwatch send` does."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.client: httpx.AsyncClient = http_client(env)

    async def send(self, sent: SentFile) -> Report:
        return await send_file(str(sent.path.name), sent.data, Target(self.env, self.client, None, HTTP_BATCH))

    async def close(self) -> None:
        await self.client.aclose()
