"""Progress of a build: a live line per phase on a terminal, JSON log lines otherwise.

Each phase runs its Spark jobs under its own job group; a small thread reads Spark's status
tracker (tasks done / total of the group's stages) and redraws one line on stderr. Spark's own
console bar is switched off by the command so the two never interleave.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
BAR_WIDTH = 24


class Progress:
    def __init__(self, spark: SparkSession | None, *, interactive: bool | None = None,
                 stream: TextIO | None = None, interval_s: float = 0.5) -> None:
        self.spark = spark
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.interval_s = interval_s
        self.timings: dict[str, float] = {}
        self._count = 0

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._count += 1
        group = f"featurestream-training-{self._count}"
        started = time.monotonic()
        stop = threading.Event()
        watcher: threading.Thread | None = None
        if self.spark is not None:
            self.spark.sparkContext.setJobGroup(group, name, interruptOnCancel=False)
        if self.interactive and self.spark is not None:
            watcher = threading.Thread(target=self._watch, args=(group, name, started, stop), daemon=True)
            watcher.start()
        else:
            log.info(json.dumps({"event": "phase_started", "phase": name}))
        ok = False
        try:
            yield
            ok = True
        finally:
            stop.set()
            if watcher is not None:
                watcher.join(timeout=2)
            elapsed = time.monotonic() - started
            self.timings[name] = round(elapsed, 3)
            if self.spark is not None:
                self.spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]
            status = "done" if ok else "failed"
            if self.interactive:
                self.stream.write(f"\r\x1b[2K  {name:<28} {status} in {elapsed:.1f}s\n")
                self.stream.flush()
            else:
                log.info(json.dumps({"event": f"phase_{status}", "phase": name, "seconds": round(elapsed, 3)}))

    def _watch(self, group: str, name: str, started: float, stop: threading.Event) -> None:
        assert self.spark is not None
        tracker = self.spark.sparkContext.statusTracker()
        # The first frame is drawn at once, so even a phase shorter than the interval shows its line.
        while True:
            try:
                done, total = self._tasks(tracker, group)
            except Exception as exc:  # the tracker can race with job clean-up; skip this frame
                log.debug("progress: %s", exc)
            else:
                filled = int(BAR_WIDTH * done / total) if total else 0
                bar = "#" * filled + "." * (BAR_WIDTH - filled)
                tasks = f"{done}/{total} tasks" if total else "planning"
                self.stream.write(f"\r\x1b[2K  {name:<28} [{bar}] {tasks}  {time.monotonic() - started:.1f}s")
                self.stream.flush()
            if stop.wait(self.interval_s):
                return

    @staticmethod
    def _tasks(tracker: Any, group: str) -> tuple[int, int]:
        """Tasks done and in total over the stages of the group's jobs."""
        done = total = 0
        for job_id in tracker.getJobIdsForGroup(group):
            job = tracker.getJobInfo(job_id)
            for stage_id in job.stageIds if job else []:
                stage = tracker.getStageInfo(stage_id)
                if stage is not None:
                    done += stage.numCompletedTasks
                    total += stage.numTasks
        return done, total
