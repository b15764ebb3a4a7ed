"""Apache Kafka 4.x, KRaft single node (combined broker + controller) on 127.0.0.1, no Docker."""

from __future__ import annotations

import base64
import os
import subprocess
import uuid
from pathlib import Path

from trialwatch.devstack import apt, kafka_jars, procs
from trialwatch.devstack.console import DevstackError
from trialwatch.devstack.paths import KAFKA_LOG4J
from trialwatch.devstack.settings import Settings

MAIN_CLASS = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
HEAP = "512m"
JVM_OPTS = [
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
]


def server_properties(cfg: Settings) -> str:
    host, port, ctl = cfg.kafka_host, cfg.kafka_port, cfg.controller_port
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"{host}:{ctl}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{ctl}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(cfg.paths.kafka_data),
        "num.partitions": "3",
        "auto.create.topics.enable": "false",
        "group.initial.rebalance.delay.ms": "0",
        "offsets.topic.num.partitions": "3",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.num.partitions": "3",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "delete.topic.enable": "true",
        # after a SIGKILL the restarted node waits out its old broker session: keep that short
        "broker.session.timeout.ms": "3000",
        "broker.heartbeat.interval.ms": "500",
    }
    return "".join(f"{key}={val}\n" for key, val in props.items())


def properties_file(cfg: Settings) -> Path:
    return cfg.paths.kafka_dir / "server.properties"


def java_argv(cfg: Settings, libs: Path, main: str, heap: str = HEAP) -> list[str]:
    java = apt.ensure_command("java", ["openjdk-17-jre-headless"])
    return [
        java,
        f"-Xms{heap}",
        f"-Xmx{heap}",
        *JVM_OPTS,
        f"-Dlog4j2.configurationFile={KAFKA_LOG4J}",
        f"-Dkafka.logs.dir={cfg.paths.log_dir}",
        "-cp",
        kafka_jars.classpath(libs),
        main,
    ]


def new_cluster_id() -> str:
    """A Kafka ``Uuid`` string: 22 chars of unpadded base64url, never starting with '-'."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def formatted(cfg: Settings) -> bool:
    return (cfg.paths.kafka_data / "meta.properties").exists()


def format_storage(cfg: Settings, libs: Path) -> str:
    """``StorageTool format --standalone`` once per data dir; returns the new cluster id."""
    cluster_id = new_cluster_id()
    argv = java_argv(cfg, libs, STORAGE_TOOL, heap="256m")
    argv += ["format", "--standalone", "-t", cluster_id, "-c", str(properties_file(cfg))]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    with cfg.paths.log("kafka-format").open("a") as log:
        log.write(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise DevstackError(f"kafka storage format failed:\n{proc.stdout}{proc.stderr}")
    (cfg.paths.kafka_dir / "formatted-ports").write_text(_port_stamp(cfg))
    return cluster_id


def _port_stamp(cfg: Settings) -> str:
    return f"{cfg.bootstrap} controller={cfg.controller_port}\n"


def port_change(cfg: Settings) -> str | None:
    """A warning if the data dir was formatted for other ports (the quorum remembers them)."""
    stamp = cfg.paths.kafka_dir / "formatted-ports"
    if stamp.exists() and stamp.read_text() != _port_stamp(cfg):
        return f"data formatted for {stamp.read_text().strip()}; run `reset` if the broker fails"
    return None


def pidfile(cfg: Settings) -> Path:
    return cfg.paths.pidfile("kafka")


def running(cfg: Settings) -> int | None:
    return procs.running_pid(pidfile(cfg))


def launch(cfg: Settings, libs: Path) -> int:
    """Start ``kafka.Kafka`` in the background (formats the data dir first if needed)."""
    cfg.paths.ensure()
    properties_file(cfg).write_text(server_properties(cfg))
    if not formatted(cfg):
        format_storage(cfg, libs)
    for port, var in ((cfg.kafka_port, "BOOTSTRAP"), (cfg.controller_port, "CONTROLLER_PORT")):
        if procs.port_open(cfg.kafka_host, port):
            raise DevstackError(f"port {port} is taken by another process (TRIALWATCH_KAFKA_{var})")
    argv = [*java_argv(cfg, libs, MAIN_CLASS), str(properties_file(cfg))]
    return procs.spawn(argv, cfg.paths.log("kafka"), pidfile(cfg), os.environ, cwd=cfg.paths.kafka_dir)


def stop(cfg: Settings, kill: bool = False, timeout: float = 60.0) -> str:
    """SIGTERM (controlled shutdown), SIGKILL after ``timeout``; ``kill=True`` simulates a crash. Returns
    once the broker's ports are closed too, so that a start right after it finds them free."""
    ports = [(cfg.kafka_host, cfg.kafka_port), (cfg.kafka_host, cfg.controller_port)]
    return procs.stop_pidfile(pidfile(cfg), timeout=timeout, kill=kill, ports=ports)
