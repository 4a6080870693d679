"""The streaming job's wiring: Kafka → parse → transforms → tile engine → online store.

Two queries share the source:
- `features`: valid events → the stateless transform steps → the tile engine (one stateful
  operator) → foreachBatch: one full record per entity to the online store, late events to the
  late sink (`<dlq_path>/<group>/late/batch_id=N/`, Parquet, rewritten whole if a batch is replayed),
  counters to the log and to `EngineMetrics`.
- `dlq`: records that could not be parsed, appended to Parquet (`<dlq_path>/<group>/events`).
- `archive-<table>` (a group with `archive: true`): valid events, before transforms, to the raw
  event archive (engine.archive; checkpoint `<checkpoint_root>/_archive/<table>`).
Each has its own checkpoint under `<checkpoint_root>/<feature group>/`, so both restart exactly
where they stopped.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import DataStreamWriter, StreamingQuery

from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.config.profile import EnvironmentProfile
from featurestream.connectors.event_source import read_events
from featurestream.connectors.online_store import OnlineStoreTarget, build_sink
from featurestream.engine import aggregation, archive
from featurestream.engine.parsing import invalid_events, parse_events, valid_events
from featurestream.engine.transforms import apply_stream_transforms, check_with_spark
from featurestream.io import paths
from featurestream.ops.metrics import counted

log = logging.getLogger(__name__)


def late_path(spec: FeatureGroupSpec, profile: EnvironmentProfile) -> str:
    return paths.join(profile.dlq_path, spec.name, "late")


def online_target(spec: FeatureGroupSpec, profile: EnvironmentProfile) -> OnlineStoreTarget:
    return OnlineStoreTarget(
        feature_group_name=spec.online_store.feature_group_name,
        record_identifier=spec.entity.key,
        event_time_feature=spec.event_time.field,
        feature_names=tuple(aggregation.feature_columns(spec)),
        region=profile.feature_store.region,
        # The engine emits at most one record per entity per micro-batch: no dedup in the sink.
        already_unique=True,
    )


@dataclass
class EngineMetrics:
    """Running totals of the engine's counters since the query started (per-batch values are logged).

    events in = aggregated + duplicates + late (+ filtered by transforms + invalid, upstream).
    `folded`: the aggregated events that reached the state folded into map-side partials.
    """

    aggregated: int = 0
    duplicates: int = 0
    late_events: int = 0
    records: int = 0
    decay_records: int = 0
    folded: int = 0
    batches: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, batch: dict[str, int]) -> None:
        with self._lock:
            self.aggregated += batch["aggregated"]
            self.duplicates += batch["duplicates"]
            self.late_events += batch["late_events"]
            self.records += batch["records"]
            self.decay_records += batch["decay_records"]
            self.folded += batch["folded"]
            self.batches += 1


def batch_counters(output: DataFrame) -> dict[str, int]:
    """One pass over a micro-batch of engine output: what happened to its events."""
    kind = F.col(aggregation.KIND)
    is_record = kind == aggregation.RECORD
    row = output.agg(
        F.coalesce(F.sum(aggregation.AGGREGATED), F.lit(0)).alias("aggregated"),
        F.coalesce(F.sum(aggregation.DUPLICATES), F.lit(0)).alias("duplicates"),
        F.count_if(kind == aggregation.LATE).alias("late_events"),
        F.count_if(is_record).alias("records"),
        F.count_if(is_record & (F.col(aggregation.AGGREGATED) == 0)).alias("decay_records"),
        F.coalesce(F.sum(aggregation.FOLDED), F.lit(0)).alias("folded"),
    ).first()
    return {k: int(v or 0) for k, v in (row.asDict() if row else {}).items()}


class RecordSink(Protocol):
    """Where a micro-batch's records go: the online store (the stream), the offline store (a backfill)."""

    def write_batch(self, records: DataFrame, batch_id: int) -> object: ...


@dataclass
class FeatureBatchWriter:
    """The foreachBatch body: records to their sink, late events to theirs, counters."""

    spec: FeatureGroupSpec
    sink: RecordSink
    late_root: str
    metrics: EngineMetrics = field(default_factory=EngineMetrics)
    # The features query's checkpoint: its offset log gives the batch's watermark to the engine's
    # map side (events folded per entity before the shuffle). None: events travel one by one.
    checkpoint: str | None = None

    def __call__(self, output: DataFrame, batch_id: int) -> None:
        spark = output.sparkSession
        if self.checkpoint is not None:
            aggregation.use_batch_watermark(spark, self.checkpoint, batch_id)
        output = output.persist()
        try:
            counters = batch_counters(output)
            if counters["late_events"]:
                # One folder per batch (a Hive-style `batch_id` partition), overwritten: a replayed
                # batch leaves exactly one copy.
                (aggregation.late_events(output)
                 .write.mode("overwrite").parquet(paths.join(self.late_root, f"batch_id={batch_id}")))
            if counters["records"]:
                self.sink.write_batch(aggregation.records(output, self.spec), batch_id)
        finally:
            output.unpersist()
            if self.checkpoint is not None:
                aggregation.clear_batch_watermark(spark)
        self.metrics.add(counters)
        log.info(json.dumps({"event": "engine_batch", "feature_group": self.spec.name, "batch_id": batch_id,
                             **counters}))


@dataclass(frozen=True)
class StreamQueries:
    features: StreamingQuery
    dlq: StreamingQuery
    metrics: EngineMetrics
    archive: StreamingQuery | None = None

    def all(self) -> list[StreamingQuery]:
        return [self.features, self.dlq, *([self.archive] if self.archive is not None else [])]


def _trigger(writer: DataStreamWriter, available_now: bool, interval: str) -> DataStreamWriter:
    return writer.trigger(availableNow=True) if available_now else writer.trigger(processingTime=interval)


def feature_stream(events: DataFrame, spec: FeatureGroupSpec, *, history: bool = False) -> DataFrame:
    """Valid events → the engine's output (records, late events, counters); `history`: the backfill's
    record at every event and decay boundary."""
    return aggregation.run_engine(apply_stream_transforms(events, spec), spec, history=history)


def start_features_query(spark: SparkSession, spec: FeatureGroupSpec, profile: EnvironmentProfile,
                         parsed: DataFrame, *, available_now: bool = False, sink: Any = None) -> tuple[StreamingQuery,
                                                                                                   EngineMetrics]:
    """The features query alone, on already parsed Kafka rows (benchmarks run it without the DLQ)."""
    batch_sink = sink or build_sink(online_target(spec, profile), profile.feature_store,
                                    paths.join(profile.dlq_path, spec.name, "online-store"))
    checkpoint = paths.join(profile.checkpoint_root, spec.name, "features")
    writer = FeatureBatchWriter(spec, batch_sink, late_path(spec, profile), checkpoint=checkpoint)
    features = (
        feature_stream(valid_events(parsed, spec), spec)
        .writeStream.queryName(f"{spec.name}-features")
        .outputMode("update")
        .foreachBatch(writer)
        .option("checkpointLocation", checkpoint)
    )
    return _trigger(features, available_now, profile.spark.trigger_interval).start(), writer.metrics


def start_stream(spark: SparkSession, spec: FeatureGroupSpec, profile: EnvironmentProfile,
                 *, available_now: bool = False, sink: Any = None, archive_table: str | None = None) -> StreamQueries:
    """Check the group against Spark, start both queries; the caller waits or stops them.

    `sink` replaces the online-store sink (anything with `write_batch(records, batch_id)`);
    `archive_table`: also archive the source's valid events there (engine.archive).
    """
    check_with_spark(spec, spark)
    parsed = parse_events(read_events(spark, spec, profile), spec)
    features, metrics = start_features_query(spark, spec, profile, parsed, available_now=available_now, sink=sink)
    dlq = (
        invalid_events(parsed)
        .transform(counted("dlq"))  # featurestream_events_total{outcome="dlq"}, in the same pass
        .writeStream.queryName(f"{spec.name}-dlq")
        .format("parquet")
        .option("path", paths.join(profile.dlq_path, spec.name, "events"))
        .option("checkpointLocation", paths.join(profile.checkpoint_root, spec.name, "dlq"))
    )
    archived = None
    if archive_table is not None:
        archived = archive.start_archive_query(valid_events(parsed, spec), spec, profile, archive_table,
                                               available_now=available_now)
    return StreamQueries(
        features=features,
        dlq=_trigger(dlq, available_now, profile.spark.trigger_interval).start(),
        metrics=metrics,
        archive=archived,
    )
