"""The streaming job's wiring: Kafka → parse → windowed features → online store, bad rows → DLQ.

Two queries share the source: `features` (stateful aggregation, written in foreachBatch) and
`dlq` (records that could not be parsed, appended to Parquet). Each has its own checkpoint under
`<checkpoint_root>/<feature group>/`, so both restart exactly where they stopped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import DataStreamWriter, StreamingQuery

from connectors.kafka_source import read_kafka
from connectors.online_store import OnlineStoreSink, OnlineStoreTarget
from featurestream.aggregation import AS_OF, feature_columns, latest_per_entity, windowed_features
from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.config.profile import EnvironmentProfile
from featurestream.parsing import invalid_events, parse_events, valid_events

log = logging.getLogger(__name__)


def _join(root: str, *parts: str) -> str:
    """Join paths that may be URIs (s3a://...) as well as local folders."""
    return "/".join([root.rstrip("/"), *parts]) if "://" in root else str(Path(root, *parts))


def online_target(spec: FeatureGroupSpec, profile: EnvironmentProfile) -> OnlineStoreTarget:
    store = profile.feature_store
    return OnlineStoreTarget(
        feature_group_name=spec.online_store.feature_group_name,
        record_identifier=spec.entity.key,
        event_time_feature=spec.event_time.field,
        feature_names=tuple(feature_columns(spec)),
        region=store.region,
        threads=store.threads_per_partition,
        max_attempts=store.max_attempts,
    )


@dataclass
class FeatureBatchWriter:
    """The foreachBatch body: one full record per entity from the updated windows, then the sink."""

    spec: FeatureGroupSpec
    sink: OnlineStoreSink

    def __call__(self, updates: DataFrame, batch_id: int) -> None:
        latest = latest_per_entity(updates, self.spec).withColumnRenamed(AS_OF, self.spec.event_time.field)
        self.sink.write_batch(latest, batch_id)


@dataclass(frozen=True)
class StreamQueries:
    features: StreamingQuery
    dlq: StreamingQuery

    def all(self) -> list[StreamingQuery]:
        return [self.features, self.dlq]


def _trigger(writer: DataStreamWriter, available_now: bool, interval: str) -> DataStreamWriter:
    return writer.trigger(availableNow=True) if available_now else writer.trigger(processingTime=interval)


def start_stream(spark: SparkSession, spec: FeatureGroupSpec, profile: EnvironmentProfile,
                 *, available_now: bool = False) -> StreamQueries:
    """Start both queries; the caller waits (awaitTermination) or stops them."""
    checkpoints = _join(profile.checkpoint_root, spec.name)
    parsed = parse_events(read_kafka(spark, spec, profile.kafka), spec)
    interval = profile.spark.trigger_interval

    features = (
        windowed_features(valid_events(parsed, spec), spec)
        .writeStream.queryName(f"{spec.name}-features")
        .outputMode("update")
        .foreachBatch(FeatureBatchWriter(spec, OnlineStoreSink(online_target(spec, profile))))
        .option("checkpointLocation", _join(checkpoints, "features"))
    )
    dlq = (
        invalid_events(parsed)
        .writeStream.queryName(f"{spec.name}-dlq")
        .format("parquet")
        .option("path", _join(profile.dlq_path, spec.name, "events"))
        .option("checkpointLocation", _join(checkpoints, "dlq"))
    )
    return StreamQueries(
        features=_trigger(features, available_now, interval).start(),
        dlq=_trigger(dlq, available_now, interval).start(),
    )
