"""The MLLP listener in-process (in-memory store): one ACK per message, isolation, limits, TLS."""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from ingest_service.builders import MemoryStore, memory_ingestion, oru
from services.ingest.bootstrap import mllp_tls
from services.ingest.mllp.framing import FrameDecoder, frame
from services.ingest.mllp.server import MllpLimits, MllpServer
from services.ingest.settings import IngestSettings

LIMITS = MllpLimits(max_message_bytes=4096, message_timeout=0.5, idle_timeout=5.0, max_connections=4)


class Peer:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.decoder = FrameDecoder(1 << 20)

    async def acks(self, count: int, seconds: float = 5.0) -> list[list[str]]:
        found: list[bytes] = []
        async with asyncio.timeout(seconds):
            while len(found) < count:
                data = await self.reader.read(65536)
                assert data, f"connection closed after {len(found)} ACKs"
                found += [item for item in self.decoder.feed(data) if isinstance(item, bytes)]
        return [ack.decode().split("\r")[1].split("|") for ack in found]


async def connect(server: MllpServer, tls: ssl.SSLContext | None = None) -> Peer:
    return Peer(*await asyncio.open_connection("127.0.0.1", server.port, ssl=tls))


async def serve(store: MemoryStore, limits: MllpLimits = LIMITS, tls: ssl.SSLContext | None = None) -> MllpServer:
    ingestion, _ = memory_ingestion(store)
    server = MllpServer(ingestion, "127.0.0.1", 0, limits, tls)
    await server.start()
    return server


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest_asyncio.fixture(loop_scope="session")
async def server(store: MemoryStore) -> AsyncIterator[MllpServer]:
    server = await serve(store)
    yield server
    await server.stop()


async def test_many_messages_on_one_connection_get_one_ack_each_in_order(server: MllpServer) -> None:
    messages = [oru("C-1"), oru("C-2", message_type="ADT^A01"), oru("C-1"), oru("C-3", pid3=""), b"junk", oru("C-4")]
    peer = await connect(server)
    peer.writer.write(b"".join(frame(m) for m in messages))
    msas = await peer.acks(len(messages))
    assert [msa[1:3] for msa in msas] == [
        ["AA", "C-1"],
        ["AR", "C-2"],
        ["AA", "C-1"],  # a re-sent control id: acknowledged, stored once
        ["AE", "C-3"],
        ["AR", ""],
        ["AA", "C-4"],
    ]


async def test_a_stalled_sender_does_not_delay_another_and_is_dropped(server: MllpServer, store: MemoryStore) -> None:
    slow = await connect(server)
    slow.writer.write(frame(oru("S-1"))[:40])  # half a message, then nothing
    await slow.writer.drain()
    fast = await connect(server)
    started = asyncio.get_running_loop().time()
    fast.writer.write(frame(oru("F-1")))
    assert (await fast.acks(1))[0][1:3] == ["AA", "F-1"]
    assert asyncio.get_running_loop().time() - started < LIMITS.message_timeout
    assert await asyncio.wait_for(slow.reader.read(), timeout=5) == b""  # closed after message_timeout
    assert "HL7:NIHCC-LAB:S-1" not in store.keys


async def test_an_oversized_message_is_rejected_and_the_next_one_accepted(server: MllpServer) -> None:
    big = oru("BIG-1") + b"NTE|1||" + b"x" * LIMITS.max_message_bytes + b"\r"
    peer = await connect(server)
    peer.writer.write(frame(big) + frame(oru("C-9")))
    assert [msa[1:3] for msa in await peer.acks(2)] == [["AR", "BIG-1"], ["AA", "C-9"]]


async def test_storage_failure_is_retried_then_answered_ar_and_nothing_is_kept(store: MemoryStore) -> None:
    store.failures = 3
    server = await serve(store)
    try:
        peer = await connect(server)
        peer.writer.write(frame(oru("C-1")))
        [msa] = await peer.acks(1)
        assert msa[1] == "AR"
        peer.writer.write(frame(oru("C-1")))  # the sender resends; the database is back
        [msa] = await peer.acks(1)
        assert msa[1] == "AA"
    finally:
        await server.stop()
    assert store.keys == {"HL7:NIHCC-LAB:C-1"}


def make_certificates(directory: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, with the openssl command."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=TrialWatch test CA")  # fmt: skip
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1")  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-copy_extensions", "copy")  # fmt: skip
    return {name: directory / name for name in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


async def test_tls_listener_requires_a_client_certificate(store: MemoryStore, tmp_path: Path) -> None:
    files = make_certificates(tmp_path)
    settings = IngestSettings.from_mapping(
        {
            "TRIALWATCH_MLLP_TLS_CERT": str(files["server.pem"]),
            "TRIALWATCH_MLLP_TLS_KEY": str(files["server.key"]),
            "TRIALWATCH_MLLP_TLS_CA": str(files["ca.pem"]),
        }
    )
    server = await serve(store, tls=mllp_tls(settings))
    client = ssl.create_default_context(cafile=str(files["ca.pem"]))
    try:
        anonymous = await connect(server, client)
        anonymous.writer.write(frame(oru("T-0")))
        with pytest.raises((ssl.SSLError, ConnectionError, AssertionError)):
            await anonymous.acks(1)
        client.load_cert_chain(str(files["client.pem"]), str(files["client.key"]))
        peer = await connect(server, client)
        peer.writer.write(frame(oru("T-1")))
        assert (await peer.acks(1))[0][1:3] == ["AA", "T-1"]
    finally:
        await server.stop()
    assert store.keys == {"HL7:NIHCC-LAB:T-1"}


async def test_every_ack_has_a_control_id_of_its_own_across_bursts_and_connections(server: MllpServer) -> None:
    """ACK MSH-10 comes from a per-process prefix and a counter (not a uuid4 each); MSH-7 is the burst's time."""
    headers: list[list[str]] = []
    for connection in range(2):
        peer = await connect(server)
        for burst in range(2):
            peer.writer.write(b"".join(frame(oru(f"U-{connection}-{burst}-{n}")) for n in range(3)))
            found: list[bytes] = []
            async with asyncio.timeout(5.0):
                while len(found) < 3:
                    found += [
                        item for item in peer.decoder.feed(await peer.reader.read(65536)) if isinstance(item, bytes)
                    ]
            headers += [ack.decode().split("\r")[0].split("|") for ack in found]
        peer.writer.close()
    control_ids = [msh[9] for msh in headers]
    assert len(control_ids) == 12 and len(set(control_ids)) == 12
    assert all(len(control_id) == 20 for control_id in control_ids)  # HL7 v2.5.1 ST(20)
    assert all(len(msh[6]) == 19 and msh[6][:14].isdigit() and msh[6].endswith("+0000") for msh in headers)
