"""Detached service processes: spawn with a log and a pid file, check, stop, wait for health.

A pid file holds the pid and the process's start time (clock ticks since boot, from
/proc/<pid>/stat), so a recycled pid is never mistaken for ours and never signalled.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

# Children spawned by this interpreter, kept so that they are reaped (no zombies, no
# ResourceWarning) when a test process starts and stops services itself.
_children: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class PidRecord:
    pid: int
    start_ticks: int


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces; fields resume after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot, or None when it does not exist."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else None


def _reap(pid: int) -> None:
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]


def is_running(record: PidRecord) -> bool:
    """True while that very process (same pid, same start time) runs and is not a zombie."""
    _reap(record.pid)
    fields = _stat_fields(record.pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return int(fields[19]) == record.start_ticks


def read_pid_file(path: Path) -> PidRecord | None:
    """The record in a pid file, or None when the file is absent or unreadable."""
    try:
        data = json.loads(path.read_text())
        return PidRecord(pid=int(data["pid"]), start_ticks=int(data["start_ticks"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def record_for(pid: int) -> PidRecord | None:
    ticks = start_ticks(pid)
    return PidRecord(pid, ticks) if ticks is not None else None


def write_pid_file(path: Path, record: PidRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"pid": record.pid, "start_ticks": record.start_ticks}) + "\n")
    tmp.replace(path)


def spawn(
    cmd: Sequence[str],
    *,
    log_path: Path,
    pid_path: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    user: str | None = None,
) -> PidRecord:
    """Start `cmd` in its own session, output appended to `log_path`, and write its pid file.

    `user` runs it under that account (setuid in the child; needs root), the way a server that
    refuses root, such as PostgreSQL, must be run.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as out:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        out.write(f"\n=== {stamp} featurestream stack: {' '.join(cmd)}\n".encode())
        out.flush()
        child = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )
    _children[child.pid] = child
    record = record_for(child.pid) or PidRecord(child.pid, -1)
    write_pid_file(pid_path, record)
    log.debug("spawned pid %s: %s", child.pid, " ".join(cmd))
    return record


def wait_gone(record: PidRecord, timeout: float) -> bool:
    """Poll until the process has exited; True when it did within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while is_running(record):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def stop(record: PidRecord, timeout: float = 15.0) -> None:
    """SIGTERM to exactly this pid, then SIGKILL if it is still there after `timeout` seconds."""
    if not is_running(record):
        return
    try:
        os.kill(record.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    if wait_gone(record, timeout):
        return
    log.warning("pid %s ignored SIGTERM for %.0fs; sending SIGKILL", record.pid, timeout)
    try:
        os.kill(record.pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    wait_gone(record, 5.0)


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class HealthTimeoutError(Exception):
    """The health check did not pass in time (or the process died first)."""


def wait_healthy(
    check: Callable[[], bool],
    *,
    record: PidRecord | None,
    timeout: float,
    interval: float = 0.1,
) -> float:
    """Poll `check` until it passes; returns the seconds waited. Fails fast if the process exits."""
    started = time.monotonic()
    while True:
        if check():
            return time.monotonic() - started
        if record is not None and not is_running(record):
            raise HealthTimeoutError(f"process {record.pid} exited before it became healthy")
        if time.monotonic() - started >= timeout:
            raise HealthTimeoutError(f"not healthy after {timeout:.0f}s")
        time.sleep(interval)
