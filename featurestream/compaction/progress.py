"""Progress of a run: phase events for callers, and a live display for interactive terminals.

Every run reports its phases (lock, gc, list, plan, write, written, snapshot, ledger, commit,
committed, done) to a `Progress`. The console version prints one line per phase with the elapsed
time and, while Spark works, one self-rewriting line with the active stage's task counts.
Callers can add hooks (`Progress(hooks=[...])`) to react to a phase, e.g. to record timings.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

Hook = Callable[[str, str, str], None]  # (feature group, phase, detail)


class Progress:
    """Silent, except for the hooks."""

    def __init__(self, hooks: list[Hook] | None = None) -> None:
        self.hooks = list(hooks or [])

    def phase(self, group: str, name: str, detail: str = "") -> None:
        self._show(group, name, detail)
        for hook in self.hooks:
            hook(group, name, detail)

    def _show(self, group: str, name: str, detail: str) -> None:
        """Display a phase (the console subclass prints it)."""

    @contextlib.contextmanager
    def spark_work(self, spark: SparkSession, group: str, label: str) -> Iterator[None]:
        yield


class ConsoleProgress(Progress):
    def __init__(self, stream: TextIO = sys.stderr, hooks: list[Hook] | None = None, poll_s: float = 0.5) -> None:
        super().__init__(hooks)
        self.stream = stream
        self.poll_s = poll_s
        self.started = time.monotonic()
        self._line_open = False

    def _elapsed(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60:02d}:{seconds % 60:02d}"

    def _show(self, group: str, name: str, detail: str) -> None:
        self._end_line()
        self.stream.write(f"[{self._elapsed()}] {group}: {name}{' - ' + detail if detail else ''}\n")
        self.stream.flush()

    def _end_line(self) -> None:
        if self._line_open:
            self.stream.write("\n")
            self._line_open = False

    @contextlib.contextmanager
    def spark_work(self, spark: SparkSession, group: str, label: str) -> Iterator[None]:
        stop = threading.Event()
        tracker = spark.sparkContext.statusTracker()

        def poll() -> None:
            while not stop.wait(self.poll_s):
                done = total = 0
                stages = tracker.getActiveStageIds()
                for stage_id in stages:
                    info = tracker.getStageInfo(stage_id)
                    if info is not None:
                        done += info.numCompletedTasks
                        total += info.numTasks
                if total:
                    width = 24
                    filled = int(width * done / total)
                    bar = "#" * filled + "." * (width - filled)
                    self.stream.write(f"\r[{self._elapsed()}] {group}: {label} [{bar}] {done}/{total} tasks   ")
                    self.stream.flush()
                    self._line_open = True

        thread = threading.Thread(target=poll, name="compaction-progress", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self._end_line()
