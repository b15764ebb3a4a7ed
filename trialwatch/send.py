"""`trialwatch send [--via mllp|http|kafka] FILE…`: send input files to the running stack's ingest.

The format of each file is detected from its content (INTERFACES §1): HL7 goes over MLLP by default, one
connection per file with many messages in flight (one ACK each, in order); FHIR and TrialWatch records
go over HTTP, in requests of at most `--batch` records; `--via kafka` publishes one message per record
to the raw input topics (their outcome is on the dead-letter topic). Files are sent one after the other,
in order, each record after the previous one (ingest commits before it answers), so the stack sees them
in the order given. The stack is the one of TRIALWATCH_STACK (default dev), read from its env file
(TRIALWATCH_ENV_FILE overrides); the token is TRIALWATCH_TOKEN, else the env file's.

One summary line per file on stdout; each rejected record as NDJSON `{"source", "error"}` on stderr.
Exit 0 when every record was accepted, 65 when some were rejected, 2 on usage errors or when the stack
cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

from services.ingest.mllp.framing import FrameDecoder, frame
from services.ingest.units import Format, Unit, split_units
from shared.messaging.topics import IN_FHIR, IN_HL7, IN_RECORDS
from shared.settings import KafkaSettings
from trialwatch.devstack import envfile

EXIT_OK, EXIT_USAGE, EXIT_REJECTED = 0, 2, 65
VIAS = ("mllp", "http", "kafka")
TOPICS: dict[Format, str] = {"hl7v2": IN_HL7, "fhir": IN_FHIR, "records": IN_RECORDS}
HTTP_PATHS: dict[Format, str] = {"hl7v2": "/v1/hl7", "fhir": "/v1/fhir", "records": "/v1/records"}
HL7_MEDIA_TYPE = "x-application/hl7-v2+er7"
IN_FLIGHT = 256
TIMEOUT = 60.0
_MLLP_POSITION = re.compile(r"\bmllp:[0-9]+:[0-9]+\b")
_UNESCAPE = (("\\F\\", "|"), ("\\S\\", "^"), ("\\T\\", "&"), ("\\R\\", "~"), ("\\E\\", "\\"))


class SendError(Exception):
    """The stack cannot be reached or refused the request as a whole (token, size, storage)."""


@dataclass
class Report:
    path: str
    via: str
    records: int = 0
    rejected: list[dict[str, str]] = field(default_factory=list)

    def line(self, seconds: float) -> str:
        rate = self.records / seconds if seconds > 0 else 0.0
        if self.via == "kafka":  # no answer on Kafka: rejections go to the dead-letter topic
            return f"{self.path}: {self.records} records published via kafka ({seconds:.2f}s, {rate:.0f} records/s)"
        accepted = self.records - len(self.rejected)
        return (
            f"{self.path}: {self.records} records via {self.via}: {accepted} accepted, {len(self.rejected)} "
            f"rejected ({seconds:.2f}s, {rate:.0f} records/s)"
        )


def detect(data: bytes) -> Format:
    start = data.removeprefix(b"\xef\xbb\xbf").lstrip()
    if start.startswith((b"MSH", b"FHS", b"BHS", b"\x0b")):
        return "hl7v2"
    first = next(split_units(data, "records", ""), None)
    try:
        value = orjson.loads(first.data) if first else None
    except orjson.JSONDecodeError:
        return "fhir"  # a pretty-printed document
    return "records" if isinstance(value, dict) and "DOMAIN" in value else "fhir"


def stack_env() -> dict[str, str]:
    override = os.environ.get(envfile.ENV_FILE_VAR)
    if override:
        return envfile.parse(Path(override).expanduser().read_text(encoding="utf-8"))
    return envfile.load(os.environ.get("TRIALWATCH_STACK", "dev"), create=False)


def unescape(text: str) -> str:
    for escaped, plain in _UNESCAPE:
        text = text.replace(escaped, plain)
    return text


def ack_outcome(ack: bytes) -> str | None:
    """None for MSA|AA; else the reason (ERR-8, else the MSA code)."""
    segments = ack.decode("utf-8", "replace").split("\r")
    msa = next((s.split("|") for s in segments if s.startswith("MSA")), ["MSA", "AR"])
    if len(msa) > 1 and msa[1] in ("AA", "CA"):
        return None
    err = next((s.split("|") for s in segments if s.startswith("ERR")), [])
    return unescape(err[8]) if len(err) > 8 and err[8] else f"answered {'|'.join(msa)}"


async def send_mllp(units: Sequence[Unit], env: Mapping[str, str], report: Report) -> None:
    host, port = env.get("TRIALWATCH_BIND_HOST", "127.0.0.1"), int(env.get("TRIALWATCH_MLLP_PORT", "2575"))
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
    except OSError as error:
        raise SendError(f"MLLP listener at {host}:{port} unreachable: {error}") from error
    decoder, answered, sent = FrameDecoder(1 << 24), 0, 0
    try:
        while answered < len(units):
            while sent < len(units) and sent - answered < IN_FLIGHT:
                writer.write(frame(units[sent].data))
                sent += 1
            await writer.drain()
            data = await asyncio.wait_for(reader.read(1 << 16), TIMEOUT)
            if not data:
                raise SendError(f"MLLP connection closed after {answered} of {len(units)} ACKs")
            for ack in decoder.feed(data):
                reason = ack_outcome(ack) if isinstance(ack, bytes) else "oversized ACK"
                if reason is not None:
                    where = units[answered].origin
                    report.rejected.append({"source": where, "error": _MLLP_POSITION.sub(where, reason, count=1)})
                answered += 1
    finally:
        writer.close()
    report.records += len(units)


def _chunks(units: Sequence[Unit], fmt: Format, size: int) -> list[list[Unit]]:
    if fmt == "fhir" and units and units[0].entry_origin is not None:
        return [list(units)]  # one JSON document: one request
    return [list(units[start : start + size]) for start in range(0, len(units), size)]


def http_client(env: Mapping[str, str]) -> httpx.AsyncClient:
    host, port = env.get("TRIALWATCH_BIND_HOST", "127.0.0.1"), env.get("TRIALWATCH_INGEST_PORT", "8081")
    token = os.environ.get("TRIALWATCH_TOKEN") or env.get("TRIALWATCH_TOKEN", "")
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.AsyncClient(base_url=f"http://{host}:{port}", timeout=TIMEOUT, headers=headers)


def _in_file_terms(error: str, server_source: str, where: str) -> str:
    """The reason with the server's position of the record (`request:7`, `mllp:3:7`) replaced by the file's."""
    return re.sub(re.escape(server_source) + r"(?![0-9])", where, error)


async def send_http(units: Sequence[Unit], fmt: Format, client: httpx.AsyncClient, report: Report, size: int) -> None:
    headers = {"Content-Type": HL7_MEDIA_TYPE} if fmt == "hl7v2" else {}
    for chunk in _chunks(units, fmt, size):
        positions, body = _body(chunk, fmt)
        try:
            response = await client.post(HTTP_PATHS[fmt], content=body, headers=headers)
        except httpx.HTTPError as error:
            raise SendError(f"ingest at {client.base_url} unreachable: {error!r}") from error
        if response.status_code not in (202, 422):
            raise SendError(f"ingest answered {response.status_code}: {response.text[:300]}")
        answer = response.json()
        report.records += len(answer.get("accepted", [])) + len(answer["rejected"])
        for item in answer["rejected"]:
            where = positions.get(item["source"], item["source"].replace("request:", f"{report.path}:", 1))
            report.rejected.append({"source": where, "error": _in_file_terms(item["error"], item["source"], where)})


def _body(chunk: Sequence[Unit], fmt: Format) -> tuple[dict[str, str], bytes]:
    """The request body and, for each position ingest will report (`request:LINE`), the file's."""
    if len(chunk) == 1 and chunk[0].entry_origin is not None:
        return {}, chunk[0].data
    if fmt != "hl7v2":
        return {f"request:{n}": unit.origin for n, unit in enumerate(chunk, 1)}, b"\n".join(u.data for u in chunk)
    positions, line, parts = {}, 1, []
    for unit in chunk:
        message = unit.data if unit.data.endswith(b"\r") else unit.data + b"\r"
        positions[f"request:{line}"] = unit.origin
        line += message.count(b"\r")
        parts.append(message)
    return positions, b"".join(parts)


async def send_kafka(units: Sequence[Unit], fmt: Format, env: Mapping[str, str], report: Report) -> None:
    """One message per record, all keyed by the file's name: one partition, so they stay in order."""
    from aiokafka import AIOKafkaProducer  # noqa: PLC0415 - only for --via kafka: the broker module is slow to load

    from shared.messaging.broker import aiokafka_options  # noqa: PLC0415

    producer = AIOKafkaProducer(enable_idempotence=True, **aiokafka_options(KafkaSettings.from_mapping(env)))
    try:
        await asyncio.wait_for(producer.start(), TIMEOUT)
        for unit in units:
            await producer.send(TOPICS[fmt], unit.data, key=report.path.encode())
        await producer.flush()
    except (OSError, TimeoutError) as error:
        raise SendError(f"Kafka unreachable: {error!r}") from error
    finally:
        await producer.stop()
    report.records += len(units)


@dataclass(frozen=True)
class Target:
    """Where and how files are sent: the stack's settings, its HTTP client, the channel, the batch size."""

    env: Mapping[str, str]
    client: httpx.AsyncClient
    via: str | None
    batch: int


async def send_file(path: str, data: bytes, target: Target) -> Report:
    fmt = detect(data)
    chosen = target.via or ("mllp" if fmt == "hl7v2" else "http")
    if chosen == "mllp" and fmt != "hl7v2":
        raise ValueError(f"{path}: only HL7 v2 goes over MLLP (this file holds {fmt})")
    report = Report(path, chosen)
    units = list(split_units(data, fmt, path))
    if chosen == "mllp":
        await send_mllp(units, target.env, report)
    elif chosen == "http":
        await send_http(units, fmt, target.client, report, target.batch)
    else:
        await send_kafka(units, fmt, target.env, report)
    return report


async def send_all(files: Sequence[tuple[str, bytes]], via: str | None, env: Mapping[str, str], batch: int) -> int:
    rejected = False
    async with http_client(env) as client:
        for path, data in files:
            started = time.monotonic()
            report = await send_file(path, data, Target(env, client, via, batch))
            for item in report.rejected:
                sys.stderr.write(orjson.dumps(item).decode() + "\n")
            sys.stdout.write(report.line(time.monotonic() - started) + "\n")
            sys.stdout.flush()
            rejected = rejected or bool(report.rejected)
    return EXIT_REJECTED if rejected else EXIT_OK


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--via", choices=VIAS, help="channel (default: MLLP for HL7, HTTP for JSON)")
    parser.add_argument("--batch", type=int, default=1000, metavar="N", help="records per HTTP request")
    parser.add_argument("files", nargs="+", metavar="FILE", help="HL7, FHIR JSON or NDJSON records")


def run(args: argparse.Namespace) -> int:
    try:
        env = stack_env()
        files = [(path, Path(path).read_bytes()) for path in args.files]
    except (OSError, envfile.EnvFileError) as error:
        sys.stderr.write(f"trialwatch send: {error}\n")
        return EXIT_USAGE
    try:
        return asyncio.run(send_all(files, args.via, env, max(1, args.batch)))
    except (SendError, ValueError) as error:
        sys.stderr.write(f"trialwatch send: {error}\n")
        return EXIT_USAGE
