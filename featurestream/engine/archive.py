"""The raw event archive: every parsed, valid event of a source (before transforms) in an Iceberg
table of the project's catalog, one table per source topic or stream, partitioned by event date.

It rides the source's one query (`featurestream.engine.pipeline`): the valid events of a
micro-batch come out of the same read as the groups' records and the foreachBatch body appends
them here after the groups' writes. Exactly once across restarts and replays: each append is one
Iceberg commit whose snapshot summary names the query (the id Spark keeps in the checkpoint's
`metadata` file, which a new checkpoint at the same path does not share) and the batch id. At its
first write after a start the writer looks up the newest batch id its query committed: a
replayed batch (a kill -9 between the Iceberg commit and Spark's commit log) is not appended
twice. Later batches of the same run have higher ids, so one lookup per start is enough. Readers
(Athena, Trino, DuckDB, pyiceberg) never see a batch in part, nor files of a failed one. A batch
without a valid event commits nothing.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from featurestream.config.feature_group import FeatureGroupSpec, KafkaSourceSpec
from featurestream.config.profile import EnvironmentProfile
from featurestream.iceberg import IcebergCatalog
from featurestream.io import hadoop_fs, paths

log = logging.getLogger(__name__)

# Snapshot summary keys. WRITER: the checkpoint that wrote the batch (the archive's own query's
# checkpoint before it rode the source query; kept for people and for that switch).
WRITER = "featurestream.archive.writer"
QUERY_ID = "featurestream.archive.query-id"
BATCH_ID = "featurestream.archive.batch-id"
EVENT_DATE = "event_date"
_UNSAFE = re.compile(r"[^a-z0-9_]+")


def table_name(kind: str, name: str) -> str:
    """`kafka` + `card-payments.v1` → `kafka_card_payments_v1` (a name every catalog takes)."""
    return f"{kind}_{_UNSAFE.sub('_', name.lower()).strip('_')}"


def with_event_date(events: DataFrame, event_time: str) -> DataFrame:
    """The events with their UTC event date, the table's partition column."""
    return events.withColumn(EVENT_DATE, F.to_date(F.col(event_time)))


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def ensure_table(spark: SparkSession, table: str, schema: StructType) -> None:
    """The archive table for events of `schema` (the source's columns, event time a timestamp)."""
    if spark.catalog.tableExists(table):
        return
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS {table.rsplit('.', 1)[0]}")
    columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in schema.fields)
    spark.sql(f"CREATE TABLE IF NOT EXISTS {table} ({columns}, `{EVENT_DATE}` date) USING iceberg "
              f"PARTITIONED BY ({EVENT_DATE})")


def last_batch(spark: SparkSession, table: str, key: str, value: str) -> int | None:
    """The newest batch id among the table's snapshots whose summary has `key` = `value`."""
    if not spark.catalog.tableExists(table):
        return None
    row = spark.sql(
        f"SELECT max(CAST(summary['{BATCH_ID}'] AS BIGINT)) AS done FROM {table}.snapshots "  # noqa: S608
        f"WHERE summary['{key}'] = {_quoted(value)}"
    ).first()
    return None if row is None or row.done is None else int(row.done)


def query_id(spark: SparkSession, checkpoint: str) -> str:
    """The id of the streaming query of `checkpoint` (Spark writes it once, when the query is created)."""
    return str(json.loads(hadoop_fs.read_text(spark, paths.join(checkpoint, "metadata")))["id"])


@dataclass
class ArchiveWriter:
    """Appends a micro-batch's valid events to `table`, once per (query, batch id)."""

    table: str  # <catalog>.<namespace>.<table>
    checkpoint: str  # the source query's checkpoint
    event_time: str
    _query: str | None = field(default=None, repr=False)
    _done: int | None = field(default=None, repr=False)  # the newest batch id our query committed

    def write(self, events: DataFrame, batch_id: int, rows: int) -> bool:
        """Append `events` (`rows` of them, counted by the caller: never 0) unless `batch_id` is in the
        table already; True when it appended."""
        spark = events.sparkSession
        if self._query is None:  # the first batch of this start: the only one that can be a replay
            # In the query's own session (foreachBatch's): a lookup from the job's session would
            # leave a table without our commits in that session's catalog cache for its readers.
            ensure_table(spark, self.table, events.schema)
            self._query = query_id(spark, self.checkpoint)
            self._done = last_batch(spark, self.table, QUERY_ID, self._query)
        if self._done is not None and batch_id <= self._done:
            log.info(json.dumps({"event": "archive_replayed", "table": self.table, "batch_id": batch_id,
                                 "query_id": self._query}))
            return False
        (with_event_date(events, self.event_time).writeTo(self.table)
         .option(f"snapshot-property.{WRITER}", self.checkpoint)
         .option(f"snapshot-property.{QUERY_ID}", self._query)
         .option(f"snapshot-property.{BATCH_ID}", str(batch_id))
         .append())
        self._done = batch_id
        log.info(json.dumps({"event": "archive_batch", "table": self.table, "batch_id": batch_id, "events": rows,
                             "query_id": self._query}))
        return True


def source_table(spec: FeatureGroupSpec, profile: EnvironmentProfile, catalog: IcebergCatalog) -> str:
    """The archive table of the group's source: `<catalog>.<archive namespace>.<kind>_<topic or stream>`."""
    source = spec.source
    kind, name = ("kafka", source.topic) if isinstance(source, KafkaSourceSpec) else ("kinesis", source.stream)
    return catalog.spark_table(profile.archive.namespace, table_name(kind, name))
