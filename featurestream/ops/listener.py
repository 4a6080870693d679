"""A StreamingQueryListener that turns every micro-batch's progress into metrics and a JSON log line.

Spark calls it on the driver, on its listener-bus thread through py4j, after each batch; it must be
quick and must never raise (an exception would only be printed by the JVM and lose the event).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from pyspark.sql.streaming.listener import (
    QueryProgressEvent,
    QueryStartedEvent,
    QueryTerminatedEvent,
    StreamingQueryListener,
)

from featurestream.ops.metrics import JobMetrics
from featurestream.ops.progress import BatchProgress

log = logging.getLogger(__name__)


def _first_line(text: object) -> str | None:
    if not text:
        return None
    return str(text).strip().splitlines()[0][:500]


class OpsListener(StreamingQueryListener):
    def __init__(self, metrics: JobMetrics, on_progress: Callable[[BatchProgress], None] | None = None) -> None:
        super().__init__()
        self._metrics = metrics
        self._on_progress = on_progress

    def onQueryStarted(self, event: QueryStartedEvent) -> None:
        try:
            log.info(json.dumps({"event": "query_started", "query": event.name, "query_id": str(event.id),
                                 "run_id": str(event.runId)}))
        except Exception:  # never let a log line kill the listener bus callback
            log.exception("listener: query started")

    @property
    def _jlistener(self) -> Any:
        """What Spark calls: `_ProgressAsJson` instead of pyspark's wrapper (see there)."""
        from pyspark import SparkContext

        if getattr(self, "_jlistenerobj", None) is None:
            assert SparkContext._jvm is not None
            self._jlistenerobj = SparkContext._jvm.PythonStreamingQueryListenerWrapper(_ProgressAsJson(self))
        return self._jlistenerobj

    def onQueryProgress(self, event: QueryProgressEvent) -> None:
        self.on_progress_json(event.progress.json)

    def on_progress_json(self, text: str) -> None:
        """A micro-batch's progress (Spark's JSON): metrics, one log line, the caller's hook."""
        try:
            progress = BatchProgress.from_json(text)
            self._metrics.observe_progress(progress)
            log.info(json.dumps(progress.log_fields()))
            if progress.lost_records:
                log.warning(json.dumps({"event": "kafka_records_lost", "query": progress.name,
                                        "batch_id": progress.batch_id, "lost": progress.lost_records,
                                        "ranges": progress.lost_ranges,
                                        "why": "deleted (retention) before the job read them; "
                                               "kafka.fail_on_data_loss is false"}))
            if self._on_progress is not None:
                self._on_progress(progress)
        except Exception:
            log.exception("listener: query progress")

    def onQueryIdle(self, event: object) -> None:
        """Nothing to do: idle triggers carry no new numbers."""

    def onQueryTerminated(self, event: QueryTerminatedEvent) -> None:
        try:
            error = _first_line(event.exception)
            log.log(logging.ERROR if error else logging.INFO,
                    json.dumps({"event": "query_terminated", "query_id": str(event.id), "run_id": str(event.runId),
                                "error": error}))
        except Exception:
            log.exception("listener: query terminated")


class _ProgressAsJson:
    """The py4j side of `OpsListener`: a progress event reaches it as one call for its JSON.

    pyspark's own wrapper turns every progress event into Python objects first, iterating its
    Java maps and lists from Python: py4j ends each iteration on a Java exception, which pyspark
    converts with ~15 `is_instance_of` checks, each a class search over every jar: ~120 py4j
    name look-ups per micro-batch (`bench/batch_cost.py`) for fields the listener reads from the
    JSON anyway.
    """

    def __init__(self, listener: OpsListener) -> None:
        self._listener = listener

    def onQueryStarted(self, jevent: Any) -> None:
        self._listener.onQueryStarted(QueryStartedEvent.fromJObject(jevent))

    def onQueryProgress(self, jevent: Any) -> None:
        self._listener.on_progress_json(jevent.progress().json())

    def onQueryIdle(self, jevent: Any) -> None:
        """Nothing to do: idle triggers carry no new numbers."""

    def onQueryTerminated(self, jevent: Any) -> None:
        self._listener.onQueryTerminated(QueryTerminatedEvent.fromJObject(jevent))

    class Java:
        implements = ["org.apache.spark.sql.streaming.PythonStreamingQueryListener"]


def drain(spark: Any, timeout_s: float = 30.0) -> None:
    """Wait until Spark's listener bus has delivered every event posted so far (best effort).

    Progress events reach the listener asynchronously: the last batches' counts (rows read, lost
    records) would be missing from the final metrics if the listener were removed at once.
    """
    try:
        spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty(int(timeout_s * 1000))
    except Exception as exc:  # a stopped context or a timeout: the metrics may miss the last batch
        log.warning("listener bus not drained: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
