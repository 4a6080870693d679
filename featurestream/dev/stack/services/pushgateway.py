"""Prometheus Pushgateway (Debian's prometheus-pushgateway) on 127.0.0.1, for the batch jobs' metrics.

Optional: `featurestream stack up` starts it only when named (`stack up pushgateway`); while it
runs, `stack env` exports FEATURESTREAM_PUSHGATEWAY_URL, which the batch jobs push their run
metrics to. Its metrics persist in its state folder across restarts.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from featurestream.dev.stack import debian_tools, process
from featurestream.dev.stack.config import LOOPBACK, StackConfig
from featurestream.dev.stack.services.base import Service

PACKAGE = "prometheus-pushgateway"


class PushgatewayService(Service):
    name = "pushgateway"
    optional = True

    def __init__(self, config: StackConfig) -> None:
        super().__init__(config)
        self._bin: Path | None = None

    def check_prerequisites(self) -> None:
        # Unpacked from Debian's package into build/tools when the machine has none (no daemon, no root).
        self._bin = debian_tools.program(PACKAGE, PACKAGE, self.log_path, self.config.root)

    def launch(self) -> process.PidRecord:
        self.dir.mkdir(parents=True, exist_ok=True)
        binary = self._bin or debian_tools.program(PACKAGE, PACKAGE, self.log_path, self.config.root)
        cmd = [str(binary), f"--web.listen-address={LOOPBACK}:{self.port}",
               f"--persistence.file={self.dir / 'metrics.store'}", "--persistence.interval=5s"]
        return process.spawn(cmd, log_path=self.log_path, pid_path=self.pid_path, cwd=self.dir)

    def healthy(self) -> bool:
        if not process.port_open(self.port):
            return False
        try:
            with urllib.request.urlopen(f"{self.endpoint()}/-/ready", timeout=2) as answer:  # noqa: S310 - loopback
                return bool(answer.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def env(self) -> dict[str, str]:
        return {"FEATURESTREAM_PUSHGATEWAY_URL": self.endpoint()}
