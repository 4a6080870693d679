"""Kafka: a single-node KRaft broker+controller from the Maven jars in build/jars/kafka."""

from __future__ import annotations

import base64
import logging
import shutil
import subprocess
import uuid
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from featurestream.dev.stack import paths, process
from featurestream.dev.stack.config import LOOPBACK
from featurestream.dev.stack.errors import PrerequisiteMissingError, ServiceStartError
from featurestream.dev.stack.services.base import Service

log = logging.getLogger(__name__)

HEAP = ["-Xms128m", "-Xmx512m"]
# IPv4 sockets, so that ss shows plain 127.0.0.1 rather than ::ffff:127.0.0.1.
JVM_FLAGS = ["-Djava.net.preferIPv4Stack=true", "-Dlog4j2.shutdownHookEnabled=false"]


def server_properties(data_dir: Path, port: int, controller_port: int) -> str:
    """The broker config: one node in both roles, loopback listeners, replication factors 1."""
    lines = [
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.bootstrap.servers={LOOPBACK}:{controller_port}",
        f"listeners=PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{controller_port}",
        f"advertised.listeners=PLAINTEXT://{LOOPBACK}:{port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        f"log.dirs={data_dir}",
        "num.partitions=1",
        "auto.create.topics.enable=true",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=4",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        # Consumers of a fresh group start at once instead of waiting 3 s for more members.
        "group.initial.rebalance.delay.ms=0",
        "log.retention.hours=24",
    ]
    return "\n".join(lines) + "\n"


def log4j_properties() -> str:
    """log4j2 config: the broker logs to stdout, which the stack appends to kafka.log."""
    return "\n".join(
        [
            "status = warn",
            "appender.out.type = Console",
            "appender.out.name = OUT",
            "appender.out.target = SYSTEM_OUT",
            "appender.out.layout.type = PatternLayout",
            "appender.out.layout.pattern = [%d] %p %m (%c)%n",
            "rootLogger.level = INFO",
            "rootLogger.appenderRef.out.ref = OUT",
        ]
    ) + "\n"


def new_cluster_id() -> str:
    """A KRaft cluster id as `StorageTool random-uuid` prints it (saves a JVM start).

    Kafka's Uuid: 16 random bytes, URL-safe base64 without padding, never starting with '-'
    (the tool's command line would read it as an option).
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


class KafkaService(Service):
    name = "kafka"
    stop_timeout = 30.0

    @property
    def controller_port(self) -> int:
        return self.config.port("kafka-controller")

    def listen_ports(self) -> list[int]:
        return [self.port, self.controller_port]

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    def endpoint(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def check_prerequisites(self) -> None:
        if shutil.which("java") is None:
            raise PrerequisiteMissingError("kafka: `java` is not on PATH (a JDK 17 is needed)")
        jars = paths.kafka_jars_dir(self.config.root)
        if not any(jars.glob("kafka_2.13-*.jar")):
            raise PrerequisiteMissingError(f"kafka: no broker jars in {jars}; run `make jars`")

    def _java(self, main_class: str, *args: str) -> list[str]:
        classpath = str(paths.kafka_jars_dir(self.config.root) / "*")
        log4j = f"-Dlog4j2.configurationFile={self.dir / 'log4j2.properties'}"
        return ["java", *HEAP, *JVM_FLAGS, log4j, "-cp", classpath, main_class, *args]

    def _format_storage(self, props: Path) -> None:
        """Write the KRaft metadata (cluster id, standalone voter) once per data directory."""
        if (self.data_dir / "meta.properties").is_file():
            return
        formatted = subprocess.run(
            self._java(
                "kafka.tools.StorageTool", "format", "-t", new_cluster_id(),
                "-c", str(props), "--standalone",
            ),
            capture_output=True, text=True, check=False, timeout=120,
        )
        if formatted.returncode != 0:
            output = (formatted.stdout + formatted.stderr).strip()[-500:]
            raise ServiceStartError(f"kafka: StorageTool format failed: {output}")
        log.info("kafka: formatted %s", self.data_dir)

    def launch(self) -> process.PidRecord:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        props = self.dir / "server.properties"
        props.write_text(server_properties(self.data_dir, self.port, self.controller_port))
        (self.dir / "log4j2.properties").write_text(log4j_properties())
        self._format_storage(props)
        return process.spawn(
            self._java("kafka.Kafka", str(props)),
            log_path=self.log_path,
            pid_path=self.pid_path,
            cwd=self.dir,
        )

    def healthy(self) -> bool:
        if not process.port_open(self.port):
            return False
        return _broker_answers(self.endpoint())

    def env(self) -> dict[str, str]:
        return {"FEATURESTREAM_KAFKA_BOOTSTRAP": self.endpoint()}


def _broker_answers(bootstrap: str) -> bool:
    """A metadata round trip through kafka-python: the broker is serving, not just listening."""
    quiet = logging.getLogger("kafka")
    previous = quiet.level
    quiet.setLevel(logging.CRITICAL)  # its connection-refused warnings are expected while booting
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap, request_timeout_ms=3000, api_version_auto_timeout_ms=3000
        )
        try:
            admin.describe_cluster()
        finally:
            admin.close()
    except (KafkaError, OSError, ValueError):
        return False
    finally:
        quiet.setLevel(previous)
    return True
