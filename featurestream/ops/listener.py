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

    def onQueryProgress(self, event: QueryProgressEvent) -> None:
        try:
            progress = BatchProgress.from_json(event.progress.json)
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


def drain(spark: Any, timeout_s: float = 30.0) -> None:
    """Wait until Spark's listener bus has delivered every event posted so far (best effort).

    Progress events reach the listener asynchronously: the last batches' counts (rows read, lost
    records) would be missing from the final metrics if the listener were removed at once.
    """
    try:
        spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty(int(timeout_s * 1000))
    except Exception as exc:  # a stopped context or a timeout: the metrics may miss the last batch
        log.warning("listener bus not drained: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
