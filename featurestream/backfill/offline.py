"""Engine records → the group's offline store, in SageMaker's Glue layout and schema.

    <data root>/year=YYYY/month=MM/day=DD/hour=HH/<hour>_fsbf-<range id>-b<batch>-<n>.parquet

Partitioned by the record's EventTime (UTC), with the group's feature columns in the types the
Feature Store gives them (Integral → bigint, Fractional → double, String; EventTime as the ISO-8601
text the online writer sends) and `write_time`, `api_invocation_time` (both the time the backfill
wrote the batch: the history was not available before) and `is_deleted` (false). `compact` and
`training-set` read these files like the ones AWS writes.

A micro-batch is written by Spark to a staging folder, then each file is moved to a name made of
the backfill's range id, the batch id and the file's index: a replayed batch (after a kill -9)
writes the same names again, replacing its own files, and `files_of_range` finds every file of a
range to replace a whole re-run.

An Iceberg-format group's offline store is its table: with `data_root` = `iceberg_data_root(table)`
the same sink commits each batch to that table instead (iceberg_output.py: exactly once per batch,
a new run of the range replacing the previous run's rows), and `files_of_range` has no file to
remove (the writer replaces the range's rows itself).
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from featurestream.backfill.iceberg_output import IcebergRangeWriter
from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.connectors.provisioning import feature_definitions
from featurestream.engine.aggregation import chunk_value
from featurestream.io import hadoop_fs, paths

log = logging.getLogger(__name__)

ICEBERG_TARGET = "iceberg:"

ISO_MILLIS = "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'"
# The partition folders' values are the EventTime text's digits (yyyy-MM-ddTHH…): substrings of the
# one date_format a record needs anyway, not four more (five date_format calls a record were 7% of
# the JVM's samples in a profile of a daily-chunk backfill).
_PARTITIONS = (("year", 1, 4), ("month", 6, 2), ("day", 9, 2), ("hour", 12, 2))
PARTITION_COLUMNS = tuple(part for part, _, _ in _PARTITIONS)
_AS_OF_TEXT = "_fs_as_of_text"
_AS_OF_BYTES = "_fs_as_of_bytes"
# Parquet's dictionary encoding: parquet-mr hashes every value into a per-column dictionary, then at
# the first page finds it no smaller than plain encoding and encodes the values again. The offline
# records' columns are nearly all distinct within a file (EventTime text, cards of an hour, doubles),
# so it bought nothing and cost more than half of the writer's CPU in a measurement (parquet-mr alone,
# this shape, 4M records: 4.1 CPU us a record with it, 1.8 without). Readers are unaffected.
WRITE_OPTIONS = {"parquet.enable.dictionary": "false"}
_TIMESTAMP_TYPE = "spark.sql.parquet.outputTimestampType"
_HOUR_DIR = re.compile(r"year=(\d{4})/month=(\d{2})/day=(\d{2})/hour=(\d{2})$")


def iceberg_data_root(table: str) -> str:
    """The `data_root` that sends the backfill's rows to the Iceberg table `<catalog>.<database>.<table>`."""
    return ICEBERG_TARGET + table


def iceberg_table_of(data_root: str) -> str | None:
    return data_root.removeprefix(ICEBERG_TARGET) if data_root.startswith(ICEBERG_TARGET) else None


def file_tag(range_id: str) -> str:
    """The part of a file name that says which backfill range wrote it."""
    return f"_fsbf-{range_id}-"


def _finite(column: Column) -> Column:
    # The online writer leaves NaN and ±inf out of a record; so does the offline store.
    return F.when(~F.isnan(column) & (F.abs(column) != F.lit(float("inf"))), column)


def offline_rows(records: DataFrame, spec: FeatureGroupSpec, written_at: datetime) -> DataFrame:
    """The engine's records (key, EventTime as a timestamp, features) as offline-store rows."""
    types = dict(records.dtypes)
    # The EventTime text in a projection of its own, read below five times: Spark keeps a projection
    # apart when merging it would repeat a costly expression. Merged, its common-subexpression step
    # would order this text and the write time (a function object, hashed by identity) differently
    # from chunk to chunk: new generated classes for every chunk.
    records = records.withColumn(_AS_OF_TEXT, F.date_format(F.col(f"`{spec.event_time.field}`"), ISO_MILLIS))
    # Its bytes likewise (the partition values' source, below): a common subexpression of the four
    # partition columns would be ordered by hash too, and compiled anew.
    records = records.withColumn(_AS_OF_BYTES, F.col(_AS_OF_TEXT).cast("binary"))
    as_of_text = F.col(_AS_OF_TEXT)
    columns: list[Column] = []
    for definition in feature_definitions(spec):
        name, kind = definition["FeatureName"], definition["FeatureType"]
        value = F.col(f"`{name}`")
        if name == spec.event_time.field:
            value = as_of_text
        elif kind == "Integral":
            value = value.cast("bigint")
        elif kind == "Fractional":
            value = _finite(value.cast("double"))
        elif types.get(name) == "timestamp":
            value = F.date_format(value, ISO_MILLIS)
        else:
            value = value.cast("string")
        columns.append(value.alias(name))
    # Not a literal: the write time changes per chunk and would make Spark compile the stage anew.
    micros = int(written_at.timestamp()) * 1_000_000 + written_at.microsecond
    stamp = F.timestamp_micros(chunk_value(records.sparkSession, micros))
    columns += [stamp.alias("write_time"), stamp.alias("api_invocation_time"), F.lit(False).alias("is_deleted")]
    columns += [_partition_value(F.col(_AS_OF_BYTES), position, length).alias(part)
                for part, position, length in _PARTITIONS]
    return records.select(*columns)


def _partition_value(text_bytes: Column, position: int, length: int) -> Column:
    # A substring of the EventTime text's bytes: the text is ASCII, and a string's substring counts
    # its characters from the start first (UTF8String.numChars: 6% of a backfill's task samples in a
    # profile, four partition values a record); a binary's is a copy of the bytes.
    return F.substring(text_bytes, position, length).cast("string")


def write_glue_parquet(rows: DataFrame, path: str) -> None:
    """`offline_rows` as Parquet under `path` in the Glue layout's hour folders, with the offline
    store's settings (`WRITE_OPTIONS`, millisecond timestamps), replacing what `path` held."""
    spark = rows.sparkSession
    previous = spark.conf.get(_TIMESTAMP_TYPE, None)
    # AWS writes millisecond timestamps; Spark's default INT96 is a legacy type other readers reject.
    spark.conf.set(_TIMESTAMP_TYPE, "TIMESTAMP_MILLIS")
    try:
        rows.write.options(**WRITE_OPTIONS).mode("overwrite").partitionBy(*PARTITION_COLUMNS).parquet(path)
    finally:
        if previous is None:
            spark.conf.unset(_TIMESTAMP_TYPE)
        else:
            spark.conf.set(_TIMESTAMP_TYPE, previous)


@dataclass
class OfflineStoreSink:
    """`write_batch(records, batch_id)` for the engine's foreachBatch body: the Glue layout, replay-safe."""

    spec: FeatureGroupSpec
    data_root: str  # Spark path of `.../data` (ResolvedOutputS3Uri, s3a:// or local)
    staging_root: str
    range_id: str
    files_written: int = 0  # Iceberg target: commits
    seconds: float = 0.0
    _iceberg: IcebergRangeWriter | None = None

    def write_batch(self, records: DataFrame, batch_id: int, rows: int | None = None) -> int:
        started = time.monotonic()
        spark = records.sparkSession
        written_at = datetime.now(UTC)
        table = iceberg_table_of(self.data_root)
        if table is not None:
            if self._iceberg is None:
                self._iceberg = IcebergRangeWriter(self.spec, table, self.staging_root, self.range_id)
            self._iceberg.write(offline_rows(records, self.spec, written_at).drop(*PARTITION_COLUMNS),
                                batch_id)
            self.files_written += 1
            self.seconds += time.monotonic() - started
            log.info(json.dumps({"event": "offline_store_batch", "feature_group": self.spec.name,
                                 "batch_id": batch_id, "iceberg_table": table}))
            return 1
        staging = paths.join(self.staging_root, f"batch={batch_id}")
        write_glue_parquet(offline_rows(records, self.spec, written_at), staging)
        moved = self._publish(spark, staging, batch_id)
        hadoop_fs.delete(spark, staging)
        self.files_written += moved
        self.seconds += time.monotonic() - started
        log.info(json.dumps({"event": "offline_store_batch", "feature_group": self.spec.name, "batch_id": batch_id,
                             "files": moved, "root": self.data_root}))
        return moved

    def _publish(self, spark: SparkSession, staging: str, batch_id: int) -> int:
        """Move the staged files to their final names; a name already there (a replay) is replaced."""
        per_hour: dict[str, int] = {}
        moves: list[tuple[str, str]] = []
        for source in hadoop_fs.list_files(spark, staging):
            folder, _, name = source.rpartition("/")
            match = _HOUR_DIR.search(folder)
            if match is None or not name.endswith(".parquet") or name.startswith(("_", ".")):
                continue
            year, month, day, hour = match.groups()
            hour_dir = match.group(0)
            index = per_hour.get(hour_dir, 0)
            per_hour[hour_dir] = index + 1
            name = f"{year}{month}{day}T{hour}0000Z{file_tag(self.range_id)}b{batch_id:06d}-{index:04d}.parquet"
            moves.append((source, paths.join(self.data_root, hour_dir, name)))
        hadoop_fs.move_files(spark, moves)
        return len(moves)


def files_of_range(spark: SparkSession, data_root: str, range_id: str) -> list[str]:
    """Every offline-store file a backfill range wrote (to replace them on a re-run); none for an
    Iceberg table, whose writer replaces the range's rows itself."""
    if iceberg_table_of(data_root) is not None:
        return []
    return hadoop_fs.glob(spark, paths.join(data_root, "year=*/month=*/day=*/hour=*", f"*{file_tag(range_id)}*"))


def chunk_of_file(path: str, range_id: str) -> int | None:
    """The batch (chunk) that wrote a file of `files_of_range`; None for another name."""
    match = re.search(re.escape(file_tag(range_id)) + r"b(\d{6})-\d{4}\.parquet$", path)
    return None if match is None else int(match.group(1))
