"""The MLLP listener: an asyncio server, one task per connection, one ACK^R01 per message.

Each connection reads what arrives, decodes every complete frame in it and ingests those messages as one
batch (a sender that pipelines gets group commits; one that waits for each ACK gets one message per
batch), then writes their ACKs in order — only after the commit. A stalled message (a frame begun but
not finished within ``message_timeout``), an idle connection, or a peer that stops reading its ACKs is
closed; no connection waits on another. TLS with required client certificates when configured.
"""

from __future__ import annotations

import asyncio
import itertools
import ssl
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from services.ingest.batch import Outcome
from services.ingest.handlers import Ingest
from services.ingest.mllp.ack import InboundHeader, Verdict, build_ack, read_header
from services.ingest.mllp.framing import Frame, FrameDecoder, Oversized, frame
from services.ingest.mllp.verdicts import oversized, storage_unavailable, verdict
from services.ingest.ports import StorageUnavailableError
from services.ingest.units import Unit
from shared.logs import get_logger
from shared.messaging.retry import Backoff

READ_SIZE = 64 * 1024
WRITE_TIMEOUT = 30.0
STORE_ATTEMPTS = 3
STOP_TIMEOUT = 10.0

log = get_logger(__name__)


@dataclass(frozen=True)
class MllpLimits:
    max_message_bytes: int
    message_timeout: float
    idle_timeout: float
    max_connections: int


class MllpServer:
    def __init__(
        self, ingestion: Ingest, host: str, port: int, limits: MllpLimits, tls: ssl.SSLContext | None = None
    ) -> None:
        self._ingestion = ingestion
        self._host, self._port = host, port
        self._limits = limits
        self._tls = tls
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._busy: set[asyncio.Task[None]] = set()  # connections between a burst's arrival and its ACKs
        self._stopping = False
        self._numbers = itertools.count(1)
        # ACK control ids (MSH-10, 20 characters): a random prefix per process and a counter; a uuid4 per
        # ACK cost as much as the rest of the ACK (bench.ingest_service).
        self._ack_prefix = uuid.uuid4().hex[:12]
        self._ack_numbers = itertools.count(1)
        self._backoff = Backoff(first=0.2, cap=1.0)

    @property
    def connections(self) -> int:
        return len(self._connections)

    @property
    def port(self) -> int:
        """The port listened on (the configured one, or the one the system chose for port 0)."""
        if self._server is None or not self._server.sockets:
            return self._port
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self._host, self._port, ssl=self._tls)
        log.info("mllp.listening", host=self._host, port=self._port, tls=self._tls is not None)

    async def stop(self) -> None:
        """Stops listening, lets each connection answer the burst in hand, then closes them all."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for task in self._connections - self._busy:
            task.cancel()
        if self._busy:
            await asyncio.wait(set(self._busy), timeout=STOP_TIMEOUT)
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(set(self._connections), timeout=STOP_TIMEOUT)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        number = next(self._numbers)
        if len(self._connections) >= self._limits.max_connections:
            log.warning("mllp.refused", connection=number, reason="too many connections")
            writer.close()
            return
        self._connections.add(task)
        try:
            await self._serve(reader, writer, number, task)
        except (ConnectionError, TimeoutError, ssl.SSLError) as error:  # the peer's problem, not ours
            log.info("mllp.closed", connection=number, reason=type(error).__name__)
        except asyncio.CancelledError:  # `stop()`: the task ends here, asyncio must not report it as failed
            log.info("mllp.closed", connection=number, reason="shutdown")
        finally:
            self._connections.discard(task)
            writer.close()

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int, task: asyncio.Task[None]
    ) -> None:
        decoder = FrameDecoder(self._limits.max_message_bytes)
        messages = itertools.count(1)
        log.info("mllp.connected", connection=number, peer=str(writer.get_extra_info("peername")))
        while not self._stopping:
            timeout = self._limits.message_timeout if decoder.in_message else self._limits.idle_timeout
            data = await asyncio.wait_for(reader.read(READ_SIZE), timeout=timeout)
            if not data:
                return
            frames = decoder.feed(data)
            if not frames:
                continue
            self._busy.add(task)
            try:
                acks = await self._answer(frames, [f"mllp:{number}:{next(messages)}" for _ in frames])
                writer.write(b"".join(frame(ack) for ack in acks))
                await asyncio.wait_for(writer.drain(), timeout=WRITE_TIMEOUT)
            finally:
                self._busy.discard(task)

    async def _answer(self, frames: Sequence[Frame], origins: Sequence[str]) -> list[bytes]:
        """One ACK per frame, in order, after the messages' commit."""
        units = [Unit(item, origin) for item, origin in zip(frames, origins, strict=True) if isinstance(item, bytes)]
        results = iter(await self._store(units))
        now = datetime.now(UTC)  # one time for the burst's ACKs (MSH-7 has seconds only)
        acks: list[bytes] = []
        for item in frames:
            if isinstance(item, Oversized):
                answer = oversized(item.size, self._limits.max_message_bytes)
                acks.append(self._ack(read_header(item.head), answer, now))
                continue
            header = read_header(item)
            outcome = next(results)
            answer = outcome if isinstance(outcome, Verdict) else verdict(outcome, header)
            acks.append(self._ack(header, answer, now))
        return acks

    async def _store(self, units: Sequence[Unit]) -> Sequence[Outcome | Verdict]:
        """The outcomes of the messages; when storage keeps failing, an AR for each (nothing accepted)."""
        if not units:
            return []
        failure: StorageUnavailableError | None = None
        for attempt in range(1, STORE_ATTEMPTS + 1):
            try:
                return await self._ingestion.ingest(units, "hl7v2", "mllp")
            except StorageUnavailableError as error:  # retried, then answered AR (the sender resends)
                failure = error
            log.warning("mllp.store_failed", attempt=attempt, error=repr(failure), messages=len(units))
            if attempt < STORE_ATTEMPTS:
                await asyncio.sleep(self._backoff.delay(attempt))
        assert failure is not None
        return [storage_unavailable(failure)] * len(units)

    def _ack(self, header: InboundHeader | None, answer: Verdict, now: datetime) -> bytes:
        control_id = f"{self._ack_prefix}{next(self._ack_numbers) & 0xFFFFFFFF:08x}"
        return build_ack(header, answer, now=now, control_id=control_id)
