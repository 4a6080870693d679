"""The raw event archive: every parsed, valid event of a source (before transforms) in an Iceberg
table of the project's catalog, one table per source topic or stream, partitioned by event date.

Exactly once across restarts and replays: the archive is written from a micro-batch body (Spark's
foreachBatch, whose batch ids are the checkpoint's), and each append records the writer (the
query's checkpoint) and the batch id in its snapshot summary. Before appending, the writer looks
up the newest batch id it committed: a replayed batch (a restart after kill -9 between the
Iceberg commit and Spark's commit log) is not appended twice. One commit per batch: readers
(Athena, Trino, DuckDB, pyiceberg) never see a batch in part, nor files of a failed one.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from featurestream.config.feature_group import FeatureGroupSpec, KafkaSourceSpec
from featurestream.config.profile import EnvironmentProfile
from featurestream.iceberg import IcebergCatalog
from featurestream.io import paths

log = logging.getLogger(__name__)

WRITER = "featurestream.archive.writer"
BATCH_ID = "featurestream.archive.batch-id"
EVENT_DATE = "event_date"
_UNSAFE = re.compile(r"[^a-z0-9_]+")


def table_name(kind: str, name: str) -> str:
    """`kafka` + `card-payments.v1` → `kafka_card_payments_v1` (a name every catalog takes)."""
    return f"{kind}_{_UNSAFE.sub('_', name.lower()).strip('_')}"


def with_event_date(events: DataFrame, event_time: str) -> DataFrame:
    """The events with their UTC event date, the table's partition column."""
    return events.withColumn(EVENT_DATE, F.to_date(F.col(event_time)))


@dataclass
class ArchiveWriter:
    """A foreachBatch body: `(events, batch_id)` appended to `table` once per batch id."""

    table: str  # <catalog>.<namespace>.<table>
    writer: str  # who writes: the archive query's checkpoint location
    event_time: str

    def __call__(self, events: DataFrame, batch_id: int) -> None:
        spark = events.sparkSession
        self.ensure_table(spark, events)
        done = self.last_committed(spark)
        if done is not None and batch_id <= done:
            log.info("archive: batch %d of %s already in %s (replayed); not appended again",
                     batch_id, self.writer, self.table)
            return
        (with_event_date(events, self.event_time).writeTo(self.table)
         .option(f"snapshot-property.{WRITER}", self.writer)
         .option(f"snapshot-property.{BATCH_ID}", str(batch_id))
         .append())

    def ensure_table(self, spark: SparkSession, events: DataFrame) -> None:
        if spark.catalog.tableExists(self.table):
            return
        namespace = self.table.rsplit(".", 1)[0]
        spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {namespace}")
        empty = with_event_date(events.limit(0), self.event_time)
        columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in empty.schema.fields)
        spark.sql(f"CREATE TABLE IF NOT EXISTS {self.table} ({columns}) USING iceberg PARTITIONED BY ({EVENT_DATE})")

    def last_committed(self, spark: SparkSession) -> int | None:
        """The newest batch id this writer committed (snapshot summaries of the table's history)."""
        row = spark.sql(
            f"SELECT max(CAST(summary['{BATCH_ID}'] AS BIGINT)) AS done FROM {self.table}.snapshots "  # noqa: S608
            f"WHERE summary['{WRITER}'] = '{self.writer.replace(chr(39), chr(39) * 2)}'"
        ).first()
        return None if row is None or row.done is None else int(row.done)


def source_table(spec: FeatureGroupSpec, profile: EnvironmentProfile, catalog: IcebergCatalog) -> str:
    """The archive table of the group's source: `<catalog>.<archive namespace>.<kind>_<topic or stream>`."""
    source = spec.source
    kind, name = ("kafka", source.topic) if isinstance(source, KafkaSourceSpec) else ("kinesis", source.stream)
    return catalog.spark_table(profile.archive.namespace, table_name(kind, name))


def start_archive_query(valid: DataFrame, spec: FeatureGroupSpec, profile: EnvironmentProfile, table: str, *,
                        available_now: bool = False) -> StreamingQuery:
    """The archive's own query over the source's valid events, with its own checkpoint."""
    checkpoint = paths.join(profile.checkpoint_root, "_archive", table.rsplit(".", 1)[1])
    writer = (valid.writeStream.queryName(f"archive-{table.rsplit('.', 1)[1]}")
              .foreachBatch(ArchiveWriter(table, checkpoint, spec.event_time.field))
              .option("checkpointLocation", checkpoint))
    trigger = writer.trigger(availableNow=True) if available_now else writer.trigger(
        processingTime=profile.spark.trigger_interval)
    return trigger.start()
