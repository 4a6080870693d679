"""CPU seconds used by a process and its descendants (Linux /proc), for benchmark checks.

A child that exits between two readings drops out of the second one, so take both readings
while the processes of interest (Spark's JVM and Python workers, an emulator) are alive.
"""

from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces; fields after it are fixed.
    return text.rsplit(")", 1)[1].split()


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def tree_cpu_seconds(root: int) -> dict[int, float]:
    """{pid: user+system CPU seconds} for `root` and every live descendant."""
    if not Path("/proc").is_dir():
        return {}
    children = _children()
    out: dict[int, float] = {}
    stack = [root]
    while stack:
        pid = stack.pop()
        fields = _stat(pid)
        if fields is not None:
            out[pid] = (int(fields[11]) + int(fields[12])) / _TICK
        stack.extend(children.get(pid, ()))
    return out


def used_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds spent between two readings by the processes alive at the second."""
    return sum(after[pid] - before.get(pid, 0.0) for pid in after)


class CpuClock:
    """CPU seconds of this process (driver, DuckDB) plus Spark's JVM (local mode: the executors).

    On a shared machine wall time swings with other people's load; CPU time is the work done.
    """

    def __init__(self, jvm_pid: int) -> None:
        self.jvm_pid = jvm_pid

    def __call__(self) -> float:
        fields = _stat(self.jvm_pid)
        jvm = (int(fields[11]) + int(fields[12])) / _TICK if fields is not None else 0.0
        return jvm + sum(os.times()[:2])
