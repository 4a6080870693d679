"""Start, stop and restart the emulator as a subprocess (for tests, benchmarks, the stack)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

from featurestream.dev.feature_store.app import ENDPOINT_FILE

_OPTION_FLAGS = {
    "offline_local_dir": "--offline-local-dir",
    "flush_interval_s": "--flush-interval-s",
    "latency_ms": "--latency-ms",
    "throttle_rate": "--throttle-rate",
    "error_rate": "--error-rate",
    "unprocessed_rate": "--unprocessed-rate",
    "record_write_limit": "--record-write-limit",
    "seed": "--seed",
    "request_timeout_s": "--request-timeout-s",
    "idle_timeout_s": "--idle-timeout-s",
    "workers": "--workers",
    "catalog_profile": "--catalog-profile",
}


class EmulatorStartError(RuntimeError):
    """The emulator process exited or did not answer /health in time."""


class EmulatorProcess:
    """One emulator subprocess bound to 127.0.0.1.

    `port=None` lets the server pick a free port; restarts then reuse that port, so clients
    configured with `.url` keep working. Options are the flags' names with underscores
    (latency_ms=5, throttle_rate=0.1, offline_local_dir=path, ...).
    """

    def __init__(
        self,
        state_dir: str | os.PathLike[str],
        port: int | None = None,
        host: str = "127.0.0.1",
        env: dict[str, str] | None = None,
        python: str = sys.executable,
        startup_timeout_s: float = 30.0,
        **options: Any,
    ) -> None:
        unknown = set(options) - set(_OPTION_FLAGS)
        if unknown:
            raise TypeError(f"unknown emulator options: {sorted(unknown)}")
        self.state_dir = Path(state_dir)
        self.host = host
        self.port = port
        self.env = env
        self.python = python
        self.startup_timeout_s = startup_timeout_s
        self.options = options
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise EmulatorStartError("the emulator has not been started")
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def log_path(self) -> Path:
        return self.state_dir / "emulator.log"

    def start(self) -> EmulatorProcess:
        if self._proc is not None and self._proc.poll() is None:
            return self
        self.state_dir.mkdir(parents=True, exist_ok=True)
        endpoint = self.state_dir / ENDPOINT_FILE
        endpoint.unlink(missing_ok=True)
        cmd = [self.python, "-m", "featurestream.dev.feature_store", "--host", self.host,
               "--port", str(self.port or 0), "--state-dir", str(self.state_dir)]
        for key, value in self.options.items():
            if value is not None:
                cmd += [_OPTION_FLAGS[key], str(value)]
        env = dict(os.environ if self.env is None else self.env)
        # Flags given here win over FEATURESTREAM_FS_* variables of the parent environment.
        self._log = open(self.log_path, "ab")
        self._proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        self._wait_ready(endpoint)
        return self

    def _wait_ready(self, endpoint: Path) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise EmulatorStartError(
                    f"emulator exited with {self._proc.returncode}; see {self.log_path}:\n{self._tail()}"
                )
            if endpoint.exists():
                self.port = int(json.loads(endpoint.read_text())["port"])
                if self.healthy():
                    return
            time.sleep(0.05)
        self.kill()
        raise EmulatorStartError(f"emulator not healthy after {self.startup_timeout_s} s:\n{self._tail()}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as resp:  # noqa: S310 - loopback
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/health", timeout=5) as resp:  # noqa: S310 - loopback
            return dict(json.loads(resp.read()))

    def flush(self) -> int:
        """Write the offline queue now; returns the number of rows written."""
        req = urllib.request.Request(f"{self.url}/_emulator/flush", method="POST", data=b"")  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310 - loopback
                return int(json.loads(resp.read())["rows"])
        except urllib.error.HTTPError as exc:
            raise EmulatorStartError(f"flush failed: {exc.read().decode(errors='replace')}") from exc

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (graceful: in-flight requests finish, offline queue flushed), then wait."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._close()
        return proc.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would; acknowledged writes must survive it."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._close()

    def restart(self, **options: Any) -> EmulatorProcess:
        """Stop, change the given options (e.g. throttle_rate=0.2), start on the same port."""
        unknown = set(options) - set(_OPTION_FLAGS)
        if unknown:
            raise TypeError(f"unknown emulator options: {sorted(unknown)}")
        self.stop()
        self.options.update(options)
        return self.start()

    def _close(self) -> None:
        self._proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
