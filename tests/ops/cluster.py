"""A Spark standalone cluster on this machine from the pyspark distribution: one master and two
workers (separate JVMs, loopback only), started and stopped by pid, logs under one folder."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.request import urlopen


def spark_home() -> Path:
    from pyspark.find_spark_home import _find_spark_home

    return Path(_find_spark_home())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class StandaloneCluster:
    work: Path
    env: dict[str, str]
    workers: int = 2
    worker_cores: int = 1
    worker_memory: str = "1g"
    master_port: int = field(default_factory=free_port)
    master_ui_port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.master_port}"

    def _daemon(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.work / f"{name}.log").open("wb")
        proc = subprocess.Popen([str(spark_home() / "bin" / "spark-class"), *args], env=self.env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append(proc)
        return proc

    def start(self, timeout: float = 180) -> StandaloneCluster:
        self.work.mkdir(parents=True, exist_ok=True)
        # Spark's web UIs bind to SPARK_LOCAL_IP; the daemons' heaps are kept small.
        self.env = {**self.env, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_DAEMON_MEMORY": "256m",
                    "SPARK_HOME": str(spark_home())}
        self._daemon("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                     "--port", str(self.master_port), "--webui-port", str(self.master_ui_port))
        for index in range(self.workers):
            folder = self.work / f"worker-{index}"
            folder.mkdir(exist_ok=True)
            self._daemon(f"worker-{index}", "org.apache.spark.deploy.worker.Worker", self.url,
                         "--host", "127.0.0.1", "--webui-port", str(free_port()), "--cores", str(self.worker_cores),
                         "--memory", self.worker_memory, "--work-dir", str(folder))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.state().get("aliveworkers") == self.workers:
                    return self
            except OSError:
                pass
            for proc in self.processes:
                if proc.poll() is not None:
                    raise RuntimeError(f"a cluster daemon exited ({proc.returncode}); logs in {self.work}")
            time.sleep(0.5)
        raise TimeoutError(f"{self.workers} workers did not register within {timeout}s; logs in {self.work}")

    def state(self) -> dict[str, Any]:
        with urlopen(f"http://127.0.0.1:{self.master_ui_port}/json/", timeout=5) as response:
            return dict(json.loads(response.read()))

    def executor_dirs(self) -> dict[int, list[Path]]:
        """Per worker, the executor folders it ran (work/<app>/<executor id>)."""
        return {i: sorted(p for p in (self.work / f"worker-{i}").glob("app-*/*") if p.is_dir())
                for i in range(self.workers)}

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
