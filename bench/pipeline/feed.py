"""Feeding the stream into ingest as source systems do: HL7 over MLLP, NDJSON records over HTTP.

The stream comes from `bench.generate` (the replay benchmark's composition: 60 % HL7 ORU^R01 with 7-12
OBX, 40 % NDJSON AE/EX/ISR/VS, about 2 % firing, 1 % duplicates, 0.5 % corrections), one item per
source record, in the generator's replay order. Items are spread over a few lanes (MLLP connections,
HTTP clients) by participant, so each participant's records keep their order. Paced: item i is handed
to its lane at t0 + i / rate; unpaced: as fast as ingest acknowledges. Either way a lane never waits for
one answer before sending what is due (MLLP keeps up to ``MLLP_WINDOW`` frames in flight and gets group
commits; HTTP posts what has queued, up to ``HTTP_BATCH`` lines per request), so the feed keeps its rate.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.generate import generate, load_manifest

START_BLOCK, END_BLOCK = b"\x0b", b"\x1c\x0d"
HTTP_BATCH = 100
MLLP_WINDOW = 64  # frames in flight per connection when unpaced
_SUBJECT = re.compile(rb"~([^^|~\r]+)\^\^\^")


@dataclass(frozen=True, slots=True)
class Item:
    kind: str  # "hl7" or "records"
    body: bytes
    subject: bytes


def ensure_stream(directory: Path, records: int, seed: int) -> list[Path]:
    """The generated files in replay order (generated again only when the manifest differs)."""
    manifest = load_manifest(directory)
    if manifest is None or manifest["records"] != records or manifest["seed"] != seed:
        manifest = generate(directory, records=records, participants=max(50, records // 200), seed=seed)
    return [directory / entry["name"] for entry in manifest["files"]]


def items(files: Sequence[Path]) -> Iterator[Item]:
    for path in files:
        data = path.read_bytes()
        if path.suffix == ".hl7":
            for chunk in data.split(b"MSH|")[1:]:
                message = b"MSH|" + chunk
                found = _SUBJECT.search(message)
                yield Item("hl7", message, found.group(1) if found else b"")
        else:
            for line in data.splitlines():
                if line.strip():
                    yield Item("records", line, json.loads(line).get("USUBJID", "").encode())


@dataclass
class FeedResult:
    sent: int = 0
    rejected: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


class MllpLane:
    def __init__(self, host: str, port: int, result: FeedResult, window: int) -> None:
        self.queue: asyncio.Queue[Item | None] = asyncio.Queue(maxsize=10_000)
        self._address = (host, port)
        self._result = result
        self._window = asyncio.Semaphore(window)
        self._size = window

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection(*self._address)
        acks = asyncio.create_task(self._read_acks(reader))
        try:
            while (item := await self.queue.get()) is not None:
                await self._window.acquire()
                writer.write(START_BLOCK + item.body + END_BLOCK)
                await writer.drain()
            for _ in range(self._size):  # every frame in flight acknowledged
                await self._window.acquire()
        finally:
            acks.cancel()
            writer.close()

    async def _read_acks(self, reader: asyncio.StreamReader) -> None:
        while True:
            ack = await reader.readuntil(END_BLOCK)
            self._result.sent += 1
            if b"MSA|AA" not in ack:
                self._result.rejected += 1
            self._window.release()


class HttpLane:
    def __init__(self, url: str, token: str, result: FeedResult, batch: int) -> None:
        self.queue: asyncio.Queue[Item | None] = asyncio.Queue(maxsize=10_000)
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
        self._result = result
        self._batch = batch

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=60.0) as client:
            done = False
            while not done:
                lines = [await self.queue.get()]
                while len(lines) < self._batch and not self.queue.empty():
                    lines.append(self.queue.get_nowait())
                done = lines[-1] is None
                body = b"\n".join(item.body for item in lines if item is not None)
                if body:
                    await self._post(client, body, len(lines) - done)

    async def _post(self, client: httpx.AsyncClient, body: bytes, count: int) -> None:
        response = await client.post(self._url, content=body + b"\n", headers=self._headers)
        self._result.sent += count
        if response.status_code not in (202, 422):
            self._result.errors.append(f"HTTP {response.status_code}: {response.text[:300]}")
        elif response.status_code == 422 or response.json().get("rejected"):
            self._result.rejected += len(response.json().get("rejected", []))


async def feed(
    stream: Sequence[Item],
    result: FeedResult,
    *,
    mllp: tuple[str, int],
    http_url: str,
    token: str,
    rate: float | None,
    lanes: int = 4,
) -> FeedResult:
    """Hands every item to its lane (paced at ``rate`` items/s, or as fast as possible) and waits for
    ingest to acknowledge all of them; ``result`` counts as it goes (a cancelled feed keeps its counts)."""
    mllp_lanes = [MllpLane(*mllp, result, MLLP_WINDOW) for _ in range(lanes)]
    http_lanes = [HttpLane(http_url, token, result, HTTP_BATCH) for _ in range(max(1, lanes // 2))]
    tasks = [asyncio.create_task(lane.run()) for lane in (*mllp_lanes, *http_lanes)]
    started = time.perf_counter()
    for index, item in enumerate(stream):
        if rate:
            delay = started + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        lanes_of_kind: Sequence[MllpLane | HttpLane] = mllp_lanes if item.kind == "hl7" else http_lanes
        await lanes_of_kind[zlib.crc32(item.subject) % len(lanes_of_kind)].queue.put(item)
    for lane in (*mllp_lanes, *http_lanes):
        await lane.queue.put(None)
    await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - started
    return result
