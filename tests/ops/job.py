"""Run the real streaming job (`featurestream stream`) as a subprocess and follow its JSON logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parents[2]


def job_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SPARK_LOCAL_IP": "127.0.0.1",
           "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    env.update(extra or {})
    return env


@dataclass
class JobProcess:
    """One `featurestream stream` process; stdout and stderr go to files under `logs`."""

    args: list[str]
    logs: Path
    env: dict[str, str] = field(default_factory=job_env)
    proc: subprocess.Popen[bytes] | None = None
    _seen: int = 0
    _events: list[dict[str, Any]] = field(default_factory=list)
    _stderr: TextIO | None = None

    @property
    def stderr_path(self) -> Path:
        return self.logs / "stderr.log"

    def start(self) -> JobProcess:
        self.logs.mkdir(parents=True, exist_ok=True)
        # Its own session: a kill -9 of the group takes the driver's JVM with it, as a crash would.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "featurestream.cli", "stream", *self.args], cwd=ROOT, env=self.env,
            stdout=(self.logs / "stdout.log").open("wb"), stderr=self.stderr_path.open("wb"),
            start_new_session=True)
        return self

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines so far (other lines, e.g. the JVM's, are skipped)."""
        if not self.stderr_path.exists():
            return self._events
        with self.stderr_path.open("rb") as handle:
            handle.seek(self._seen)
            chunk = handle.read()
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._seen += len(complete)
        for line in complete.decode("utf-8", "replace").splitlines():
            if line.startswith("{"):
                try:
                    self._events.append(json.loads(line))
                except ValueError:
                    continue
        return self._events

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if predicate(event):
                    return event
            assert self.proc is not None
            if self.proc.poll() is not None:
                tail = self.stderr_path.read_text(errors="replace")[-3000:]
                raise AssertionError(f"the job exited ({self.proc.returncode}) before the condition:\n{tail}")
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout}s; log: {self.stderr_path}")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill_group(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)

    def wait(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            raise

    def stop_if_running(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill_group()


def batch_ids(checkpoint: Path, log: str) -> set[int]:
    folder = checkpoint / log
    return {int(p.name) for p in folder.iterdir() if p.name.isdigit()} if folder.is_dir() else set()


def in_flight(checkpoint: Path) -> int | None:
    """The batch whose offsets are logged but not yet committed, if any."""
    pending = batch_ids(checkpoint, "offsets") - batch_ids(checkpoint, "commits")
    return max(pending) if pending else None
