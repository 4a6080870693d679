"""Online-store sink: each micro-batch's latest record per entity → SageMaker Feature Store.

Called from `foreachBatch` on the driver; the writing runs on the executors (`mapInArrow`),
never through `toPandas()` on the driver, except for a small micro-batch (the caller says how
many records it holds, at most `driver_write_max_records`): its Arrow rows are collected from
the cached batch and the same partition writer runs on the driver, which saves the Spark job of
Python tasks that costs a small batch more than its writes. Per micro-batch:

1. keep the latest record per entity by EventTime (`writer.dedup`, deterministic on ties),
   unless the target says the rows are already one per entity (`already_unique`);
2. each task writes its partition with a bounded thread pool and one reused boto3 client per
   Python worker, BatchWriteRecord of up to 25 (PutRecord when asked or when the service has no
   BatchWriteRecord), through the worker's token bucket, retrying throttles/5xx/timeouts with
   full-jitter back-off inside the batch's time budget;
3. rejected records (ValidationError) come back to the driver and go to the DLQ (Parquet);
4. the tasks' counters are merged into one `BatchMetrics`, logged as one JSON line and kept in
   `writer.metrics.history` for the metrics endpoint.

A failure that retries cannot fix raises `SinkError`: the micro-batch fails and Spark replays it
from the checkpoint. Replays are harmless: see featurestream/connectors/writer/README.md (exactly-once effect).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from featurestream.connectors.writer.dedup import latest_per_entity
from featurestream.connectors.writer.dlq import DlqEntry, write_entries
from featurestream.connectors.writer.errors import TooManyRejected
from featurestream.connectors.writer.metrics import BatchMetrics, history, merge_partitions, percentile
from featurestream.connectors.writer.plan import WritePlan
from featurestream.connectors.writer.records import format_event_time, format_value
from featurestream.connectors.writer.redact import install_redaction
from featurestream.connectors.writer.settings import WriterSettings, runtime_endpoint, worker_tps
from featurestream.connectors.writer.spark_env import task_slots
from featurestream.connectors.writer.target import OnlineStoreTarget
from featurestream.connectors.writer.task import RESULT_SCHEMA, write_partition
from featurestream.errors import SinkError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame, SparkSession

    from featurestream.config.profile import FeatureStoreSpec

log = logging.getLogger(__name__)

__all__ = [
    "BatchSink", "OnlineStoreSink", "OnlineStoreTarget", "build_sink", "format_event_time", "format_value",
]

# The writer's own exception line inside a Py4J/PythonException message.
_WORKER_ERROR = re.compile(
    r"((?:connectors\.writer\.errors\.\w+|featurestream\.errors\.SinkError|botocore\.\S+): [^\n]*)")


class BatchSink(Protocol):
    def write_batch(self, records: DataFrame, batch_id: int, rows: int | None = None) -> BatchMetrics: ...


def _worker_error(exc: BaseException) -> str:
    """The first line of the executor's own error, not the 200-line JVM trace around it."""
    text = str(exc)
    match = _WORKER_ERROR.search(text)
    return match.group(1) if match else text.strip().splitlines()[0][:500] if text.strip() else type(exc).__name__


@dataclass(frozen=True)
class OnlineStoreSink:
    """Writes a micro-batch of records (identifier, event time, features) to the online store.

    `records` may hold several rows per entity; only the latest by event time is written (with
    `target.already_unique` the caller promises one row per entity and every row is written). The
    event-time column may be a timestamp (written as ISO-8601 UTC), a string or a number.
    """

    target: OnlineStoreTarget
    settings: WriterSettings

    def plan(self, records: DataFrame, deadline_epoch: float, *, on_driver: bool = False) -> WritePlan:
        # On the driver one writer has the whole account budget.
        executors, slots = (1, 1) if on_driver else task_slots(records.sparkSession, self.settings.executors)
        return WritePlan(
            target=self.target,
            settings=self.settings,
            endpoint_url=runtime_endpoint(self.settings),
            deadline_epoch=deadline_epoch,
            worker_tps=worker_tps(self.settings.account_tps, executors, slots),
        )

    @property
    def driver_write_max_records(self) -> int:
        """Batches of at most this many records are written from the driver (the profile's setting)."""
        return self.settings.driver_write_max_records

    def write_batch(self, records: DataFrame, batch_id: int, rows: int | None = None) -> BatchMetrics:
        """`rows`: how many rows `records` holds, when the caller knows (a small batch is written
        from the driver); None = on the executors."""
        install_redaction()
        started = time.monotonic()
        target = self.target
        latest = records if target.already_unique else \
            latest_per_entity(records, target.record_identifier, target.event_time_feature, target.feature_names)
        on_driver = rows is not None and rows <= self.settings.driver_write_max_records
        plan = self.plan(records, time.time() + self.settings.batch_timeout_s, on_driver=on_driver)
        results = self._results(batch_id, lambda: _write_on_driver(latest, plan) if on_driver else
                                latest.mapInArrow(partial(write_partition, plan), RESULT_SCHEMA).collect())
        return self._report(records.sparkSession, results, plan, batch_id, started, on_driver)

    def write_arrow(self, spark: SparkSession, batches: Sequence[pa.RecordBatch], batch_id: int,
                    *, concurrent: int = 1) -> BatchMetrics:
        """Records already on the driver as Arrow, in `records`' layout and one per entity (the
        caller collected its micro-batch once), written by the same partition writer on this
        thread: no Spark job. `concurrent`: how many such writes run at once (they share the
        account's budget). `spark` only writes rejected records to the DLQ."""
        install_redaction()
        started = time.monotonic()
        target, settings = self.target, self.settings
        if not target.already_unique:
            raise SinkError(f"writing batch {batch_id} to {target.feature_group_name} failed: "
                            "Arrow records must be one per entity (OnlineStoreTarget.already_unique)")
        plan = WritePlan(target=target, settings=settings, endpoint_url=runtime_endpoint(settings),
                         deadline_epoch=time.time() + settings.batch_timeout_s,
                         worker_tps=worker_tps(settings.account_tps, 1, concurrent))
        results = self._results(batch_id, lambda: _write_arrow(batches, plan))
        return self._report(spark, results, plan, batch_id, started, on_driver=True)

    def _results(self, batch_id: int, write: Callable[[], list[Any]]) -> list[Any]:
        try:
            return write()
        except Exception as exc:
            # The executor's message names the cause (deadline, missing group, ...); the JVM
            # stack around it adds nothing a user can act on.
            raise SinkError(f"writing batch {batch_id} to {self.target.feature_group_name} failed: "
                            f"{_worker_error(exc)}") from exc

    def _report(self, spark: SparkSession, results: list[Any], plan: WritePlan, batch_id: int, started: float,
                on_driver: bool) -> BatchMetrics:
        """The writers' results: rejected records to the DLQ, one metrics line, the history."""
        settings, target = self.settings, self.target
        parts = [json.loads(r["payload"]) for r in results if r["kind"] == "metrics"]
        rejected = [DlqEntry.from_json(r["payload"]) for r in results if r["kind"] == "dlq"]
        self._dead_letter(spark, rejected, batch_id)
        totals = merge_partitions(parts)
        metrics = BatchMetrics(
            feature_group=target.feature_group_name, batch_id=batch_id, sink="featurestream",
            mode=settings.write_mode, records_in=totals["records_in"], entities=totals["records"],
            records_written=totals["written"], dlq=totals["dlq"], calls=totals["calls"],
            retries=totals["retries"], throttles=totals["throttles"], fallbacks=totals["fallbacks"],
            latency_ms_p50=percentile(totals["latencies_ms"], 50),
            latency_ms_p99=percentile(totals["latencies_ms"], 99),
            seconds=round(time.monotonic() - started, 3), write_seconds=round(totals["task_s"], 3),
            partitions=totals["partitions"],
            worker_tps_budget=plan.worker_tps, rate_wait_s=round(totals["rate_wait_s"], 3),
            where="driver" if on_driver else "executors",
        )
        history.record(metrics)
        log.info(json.dumps({"event": "online_store_batch", **metrics.to_dict()}))
        return metrics

    def _dead_letter(self, spark: SparkSession, rejected: list[DlqEntry], batch_id: int) -> None:
        if not rejected:
            return
        settings = self.settings
        name = self.target.feature_group_name
        if settings.dlq_path is None:
            raise TooManyRejected(f"{len(rejected)} records of batch {batch_id} were rejected by {name} "
                                  f"(first: {rejected[0].error_code}) and no DLQ path is configured")
        if len(rejected) > settings.dlq_max_records_per_batch:
            raise TooManyRejected(f"{len(rejected)} records of batch {batch_id} were rejected by {name}, above "
                                  f"dlq_max_records_per_batch={settings.dlq_max_records_per_batch}; "
                                  f"first: {rejected[0].error_code}: {rejected[0].error_message}")
        write_entries(spark, rejected, settings.dlq_path, batch_id)
        log.warning(json.dumps({"event": "online_store_dlq", "feature_group": name, "batch_id": batch_id,
                                "records": len(rejected), "path": settings.dlq_path,
                                "first_error": rejected[0].error_code}))


def _write_on_driver(records: DataFrame, plan: WritePlan) -> list[dict[str, str]]:
    """The partition writer on the driver, over the batch's rows as Arrow (one JVM-only collect)."""
    return _write_arrow(records._collect_as_arrow(), plan)


def _write_arrow(batches: Sequence[pa.RecordBatch], plan: WritePlan) -> list[dict[str, str]]:
    out = write_partition(plan, iter(batches))
    return [row for batch in out for row in batch.to_pylist()]


def build_sink(target: OnlineStoreTarget, store: FeatureStoreSpec, dlq_root: str, *,
               local_master: bool = False) -> BatchSink:
    """The sink the profile asks for (`feature_store.sink`); both dead-letter to the same place.

    `dlq_root` is where this feature group's online-store DLQ goes unless the profile sets
    `feature_store.dlq_path`; `local_master`: Spark runs in local mode (see `driver_write_max_records`).
    """
    settings = WriterSettings.from_spec(store, dlq_root, local_master=local_master)
    if settings.sink == "sagemaker-connector":
        from featurestream.connectors.writer.connector_sink import ConnectorSink

        return ConnectorSink(target, settings)
    return OnlineStoreSink(target, settings)

