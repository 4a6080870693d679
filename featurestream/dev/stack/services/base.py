"""What every local service provides to the manager: ports, launch, health, stop, env exports."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from featurestream.dev.stack import process
from featurestream.dev.stack.config import StackConfig


@dataclass(frozen=True)
class ServiceStatus:
    """One row of `featurestream stack status`."""

    name: str
    port: int
    pid: int | None
    healthy: bool
    endpoint: str
    log_path: Path


class Service(ABC):
    """A local server the stack starts from its state directory and stops by pid."""

    name: str
    # Seconds to wait for health after launch; generous because two cores are shared.
    start_timeout: float = 90.0
    stop_timeout: float = 15.0
    # Other services this one uses when they run too (started first, never forced up).
    uses: tuple[str, ...] = ()
    # Optional services start only when named (`stack up pushgateway`); `stack down` stops them too.
    optional: bool = False

    def __init__(self, config: StackConfig) -> None:
        self.config = config

    @property
    def port(self) -> int:
        return self.config.port(self.name)

    def listen_ports(self) -> list[int]:
        """Every TCP port the server binds; all must be free before it starts."""
        return [self.port]

    @property
    def dir(self) -> Path:
        return self.config.service_dir(self.name)

    @property
    def pid_path(self) -> Path:
        return self.dir / f"{self.name}.pid"

    @property
    def log_path(self) -> Path:
        return self.dir / f"{self.name}.log"

    def endpoint(self) -> str:
        return self.config.url(self.name)

    def check_prerequisites(self) -> None:
        """Raise PrerequisiteMissingError naming the set-up step that provides what is absent."""
        return None

    @abstractmethod
    def launch(self) -> process.PidRecord:
        """Prepare the data directory if needed, spawn the server, write its pid file."""

    @abstractmethod
    def healthy(self) -> bool:
        """A real protocol round trip against the port (not just an open socket)."""

    def after_healthy(self) -> None:
        """One-off set-up that needs the server up (e.g. create a database); idempotent."""
        return None

    def stop(self, record: process.PidRecord) -> None:
        process.stop(record, self.stop_timeout)

    def env(self) -> dict[str, str]:
        """Shell exports for clients of this service."""
        return {}
