"""The MLLP listener of a real ingest subprocess on the test stack (real PostgreSQL and Kafka).

A client sends many messages on one connection, malformed ones among them, and gets exactly one
correct ACK per message, only once the message is committed; a stalled client neither delays
another nor keeps its connection.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
from harness import ServiceProcess, migrate, scalar
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from services.ingest.mllp.framing import FrameDecoder, frame
from trialwatch.devstack.settings import Settings

pytestmark = pytest.mark.integration

MESSAGE_TIMEOUT = 2.0


def oru(
    control: str, *, message_type: str = "ORU^R01^ORU_R01", pid3: str = "AD-301^^^ANAKINRA-AD", mode: str = "P"
) -> bytes:
    segments = [
        f"MSH|^~\\&|LIS|MLLP-LAB|TRIALWATCH|NIAID|20260302081500||{message_type}|{control}|{mode}|2.5.1",
        f"PID|1||{pid3}||Doe^Jane||19800704|F|||12 Elm St^^Bethesda^MD",
        f"OBR|1|PL-{control}|FO-{control}^LIS|57021-8^CBC^LN|||20260302080000",
        "OBX|1|NM|751-8^Neutrophils^LN||0.8|10*9/L|1.8-8.0|L|||F",
    ]
    return ("\r".join(segments) + "\r").encode()


@pytest.fixture(scope="module")
def ingest(stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    migrate(stack_settings.database_url)
    overrides = {"TRIALWATCH_MLLP_MESSAGE_TIMEOUT": str(MESSAGE_TIMEOUT)}
    service = ServiceProcess("ingest", stack_settings, tmp_path_factory.mktemp("ingest-mllp"), overrides)
    service.start()
    try:
        yield service
    finally:
        service.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def db(stack_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(stack_settings.database_url)
    yield engine
    await engine.dispose()


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = FrameDecoder(1 << 20)

    @classmethod
    async def connect(cls, cfg: Settings) -> Client:
        return cls(*await asyncio.open_connection("127.0.0.1", int(cfg.env["TRIALWATCH_MLLP_PORT"])))

    async def acks(self, count: int, seconds: float = 20.0) -> list[list[list[str]]]:
        """The next ``count`` ACKs, each as segments of fields."""
        found: list[bytes] = []
        async with asyncio.timeout(seconds):
            while len(found) < count:
                data = await self.reader.read(65536)
                assert data, f"connection closed after {len(found)} of {count} ACKs"
                found += [item for item in self.decoder.feed(data) if isinstance(item, bytes)]
        assert len(found) == count, f"{len(found)} ACKs for {count} messages"
        return [[segment.split("|") for segment in ack.decode().split("\r") if segment] for ack in found]


async def test_many_messages_on_one_connection_get_exactly_one_correct_ack_each(
    ingest: ServiceProcess, stack_settings: Settings, db: AsyncEngine
) -> None:
    run = uuid.uuid4().hex[:8]
    messages = [
        (oru(f"{run}-1"), "AA", None),
        (oru(f"{run}-2", message_type="ADT^A01"), "AR", "200"),
        (oru(f"{run}-1"), "AA", None),  # re-sent: acknowledged again, stored once
        (oru(f"{run}-3", pid3=""), "AE", "101"),
        (b"this is not HL7", "AR", "100"),
        (oru(f"{run}-4", mode="T"), "AA", None),
        (oru(f"{run}-5"), "AA", None),
    ]
    client = await Client.connect(stack_settings)
    client.writer.write(b"".join(frame(message) for message, _, _ in messages))
    acks = await client.acks(len(messages))
    for (message, code, error_code), ack in zip(messages, acks, strict=True):
        msh, msa = ack[0], ack[1]
        assert msh[8] == "ACK^R01^ACK"
        assert msa[1] == code, ack
        sent_msh = message.decode().split("\r")[0].split("|")
        if sent_msh[0] == "MSH":
            assert msa[2] == sent_msh[9]
            assert msh[2:6] == [sent_msh[4], sent_msh[5], sent_msh[2], sent_msh[3]]  # sender <-> receiver
        errors = [segment for segment in ack if segment[0] == "ERR"]
        if code == "AA":
            assert errors == []
        else:
            assert len(errors) == 1 and errors[0][3].startswith(f"{error_code}^"), ack
            assert errors[0][8], "ERR-8 names the problem"
    accepted = "SELECT count(*) FROM ingest.raw_input WHERE source_key LIKE :key"
    assert await scalar(db, accepted, key=f"HL7:MLLP-LAB:{run}-%") == 3  # visible as soon as the ACK came
    quarantined = "SELECT error FROM ingest.quarantine WHERE channel = 'mllp' AND error LIKE :key"
    assert "MSH-9" in str(await scalar(db, quarantined, key=f"%{run}-2%"))
    published = "SELECT count(*) FROM ingest.outbox WHERE source_key LIKE :key"
    assert await scalar(db, published, key=f"HL7:MLLP-LAB:{run}-%") == 2  # not the duplicate, not T mode


async def test_a_slow_client_does_not_block_another_and_a_stalled_one_is_dropped(
    ingest: ServiceProcess, stack_settings: Settings
) -> None:
    run = uuid.uuid4().hex[:8]
    slow = await Client.connect(stack_settings)
    half = frame(oru(f"{run}-slow"))
    slow.writer.write(half[:50])
    await slow.writer.drain()
    fast = await Client.connect(stack_settings)
    started = time.monotonic()
    fast.writer.write(b"".join(frame(oru(f"{run}-fast-{n}")) for n in range(20)))
    acks = await fast.acks(20)
    fast_seconds = time.monotonic() - started
    assert [ack[1][1] for ack in acks] == ["AA"] * 20
    assert fast_seconds < MESSAGE_TIMEOUT, f"the fast client waited {fast_seconds:.2f}s"
    slow.writer.write(half[50:])  # the slow client finishes within the message timeout: answered
    assert (await slow.acks(1))[0][1][1] == "AA"
    slow.writer.write(frame(oru(f"{run}-stalled"))[:30])
    await slow.writer.drain()
    async with asyncio.timeout(MESSAGE_TIMEOUT + 10):
        assert await slow.reader.read() == b"", "a stalled message closes the connection"
    print(f"\nmllp: 20 messages answered in {fast_seconds:.3f}s while another client stalled")
