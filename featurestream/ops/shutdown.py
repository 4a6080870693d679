"""Graceful stop: on SIGTERM/SIGINT (or a stop file), finish the micro-batch in flight, then stop.

Spark 3.5's `StreamingQuery.stop()` cancels the running jobs and interrupts the batch; the batch
is then replayed from the checkpoint at the next start (harmless with our idempotent writes, but
not graceful). What the query's own loop does between triggers is what we want: it runs the batch
to its commit, then checks whether the query is still active. So we mark the query's execution
TERMINATED (the state `stop()` sets first, without the interrupt) and wait: the batch in flight
commits, and a query waiting for its next trigger ends when that trigger fires, so the job ends
within one trigger interval plus the batch in flight. Past `timeout_s` we fall back to `stop()`.

The marker uses a Spark internal (`StreamExecution.state`), pinned by the pyspark version and
covered by tests/ops; if it is missing we wait for the query to be between triggers instead.

A second SIGINT/SIGTERM stops at once (KeyboardInterrupt), as people expect from Ctrl-C twice.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoppedQuery:
    name: str
    graceful: bool
    seconds: float
    last_batch_id: int | None


class StopSignal:
    """A stop request from a signal, a stop file or code; `wait` doubles as the job's idle loop."""

    def __init__(self, stop_file: str | None = None, file_exists: Callable[[str], bool] | None = None,
                 poll_s: float = 5.0) -> None:
        self._event = threading.Event()
        self.reason: str | None = None
        self.requested_at: float | None = None
        self._stop_file = stop_file
        self._file_exists = file_exists
        self._poll_s = poll_s
        self._next_poll = 0.0
        self._previous: dict[int, Any] = {}

    def check_file_with(self, file_exists: Callable[[str], bool]) -> None:
        """How to test for the stop file (the job's Hadoop FileSystem, once Spark is up)."""
        self._file_exists = file_exists

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def request(self, reason: str) -> None:
        if not self._event.is_set():
            self.reason, self.requested_at = reason, time.monotonic()
            log.info(json.dumps({"event": "stop_requested", "reason": reason}))
            self._event.set()

    def install(self) -> None:
        """Handle SIGTERM and SIGINT until `restore`; only the main thread may (Python's rule)."""
        if threading.current_thread() is not threading.main_thread():
            log.warning(json.dumps({"event": "signals_not_handled", "reason": "not the main thread"}))
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._event.is_set():
            raise KeyboardInterrupt(f"second {name}: stopping now")
        self.request(name)

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to `timeout_s`; True as soon as a stop is requested (the stop file is polled)."""
        if self._event.wait(timeout_s):
            return True
        if self._stop_file and self._file_exists and time.monotonic() >= self._next_poll:
            self._next_poll = time.monotonic() + self._poll_s
            try:
                if self._file_exists(self._stop_file):
                    self.request(f"stop file {self._stop_file}")
            except Exception as exc:  # a flaky store must not end the job; try again at the next poll
                log.warning(json.dumps({"event": "stop_file_check_failed", "error": str(exc)[:300]}))
        return self._event.is_set()


def _mark_terminated(query: Any) -> bool:
    """Tell the query's execution loop to end after its batch in flight; False if unsupported."""
    from pyspark import SparkContext

    jvm = SparkContext._jvm
    if jvm is None:
        return False
    try:
        package = jvm.org.apache.spark.sql.execution.streaming
        terminated = getattr(getattr(package, "TERMINATED$"), "MODULE$")
        query._jsq.streamingQuery().state().set(terminated)
        return True
    except Exception as exc:
        log.warning(json.dumps({"event": "graceful_marker_unavailable", "error": str(exc)[:300]}))
        return False


def _wait_for_batch_end(query: Any, deadline: float) -> None:
    """Until the query is between triggers or the batch in flight has reported its progress."""
    before = _last_batch(query)
    while query.isActive and time.monotonic() < deadline and query.status.get("isTriggerActive"):
        if _last_batch(query) != before:
            return
        time.sleep(0.05)


def _last_batch(query: Any) -> int | None:
    progress = query.lastProgress
    return int(progress["batchId"]) if progress else None


def stop_after_current_batch(queries: Sequence[Any], timeout_s: float) -> list[StoppedQuery]:
    """End every active query after its batch in flight; `stop()` whatever is left at the deadline."""
    started = time.monotonic()
    deadline = started + timeout_s
    active = [q for q in queries if q.isActive]
    marked = {id(q): _mark_terminated(q) for q in active}
    results: list[StoppedQuery] = []
    for query in active:
        if marked[id(query)]:
            query.awaitTermination(max(0.0, deadline - time.monotonic()))
            graceful = not query.isActive
        else:
            # Without the marker: stop() once the batch in flight is done. Between triggers that
            # interrupts nothing; with a backlog the next batch has just begun and is replayed.
            _wait_for_batch_end(query, deadline)
            graceful = not query.status.get("isTriggerActive")
        if query.isActive:
            if not graceful:
                log.warning(json.dumps({"event": "stop_forced", "query": query.name,
                                        "after_s": round(time.monotonic() - started, 3)}))
            query.stop()
        results.append(StoppedQuery(str(query.name), graceful, round(time.monotonic() - started, 3),
                                    _last_batch(query)))
    for result in results:
        log.info(json.dumps({"event": "query_stopped", "query": result.name, "graceful": result.graceful,
                             "seconds": result.seconds, "last_batch_id": result.last_batch_id}))
    return results
