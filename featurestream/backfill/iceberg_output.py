"""Backfilled offline rows into an Iceberg-format group's own table (SageMaker's DataCatalogConfig
table, the one Athena queries), exactly once per batch, replacing the range's earlier run.

Each run of a range has a stamp (microseconds, the time it started): its rows carry it as
`api_invocation_time`, and batch b's rows carry stamp + b µs as `write_time` (both "when the
backfill wrote it": the history was not available before). That pair names a batch's rows
without a column of ours in SageMaker's schema:

- a batch is one Iceberg commit that overwrites the rows of its own (write_time, api_invocation_time)
  and appends the new ones, so a batch replayed after a kill -9 replaces itself (the files hold
  one value of each, so Iceberg drops them whole, from their column statistics);
- a new run of the range (the first, or after `--restart`, which removes the work folder and the
  marker file in it) first deletes the rows of the range's previous run (`api_invocation_time` =
  the stamp kept in the table property `featurestream.backfill.<range id>.stamp`), then records
  its own stamp there and in the marker file; a resumed run finds the marker and keeps its stamp.

The Feature Store's own rows (written by SageMaker or the emulator) are never touched: their
`api_invocation_time` is a PutRecord call's, not a backfill's stamp.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.io import hadoop_fs, paths

log = logging.getLogger(__name__)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MARKER = "iceberg-run.json"
# Glue's and Iceberg's identifier characters; what reaches the SQL below is checked against it.
_TABLE = re.compile(r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")


def stamp_property(range_id: str) -> str:
    return f"featurestream.backfill.{range_id}.stamp"


def at_micros(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def _literal(micros: int) -> str:
    return f"timestamp_micros({int(micros)})"


@dataclass
class IcebergRangeWriter:
    spec: FeatureGroupSpec
    table: str  # `<catalog>.<database>.<table>`
    work: str  # the range's folder for the marker file (the sink's staging root)
    range_id: str
    _stamp: int | None = None

    def __post_init__(self) -> None:
        if not _TABLE.match(self.table):
            raise ValueError(f"not a <catalog>.<database>.<table> name: {self.table!r}")

    def stamp(self, spark: SparkSession) -> int:
        if self._stamp is None:
            self._stamp = self._run_stamp(spark)
        return self._stamp

    def _run_stamp(self, spark: SparkSession) -> int:
        marker = paths.join(self.work, MARKER)
        if hadoop_fs.exists(spark, marker):
            return int(json.loads(hadoop_fs.read_text(spark, marker))["stamp_us"])
        key = stamp_property(self.range_id)
        previous = self._property(spark, key)
        if previous is not None:
            # Identifiers checked in __post_init__, the value an int: nothing of a user's text.
            spark.sql(f"DELETE FROM {self.table} WHERE api_invocation_time = {_literal(int(previous))}")  # noqa: S608
            log.info(json.dumps({"event": "backfill_iceberg_replaced", "table": self.table,
                                 "range_id": self.range_id, "previous_stamp_us": int(previous)}))
        stamp = time.time_ns() // 1000
        spark.sql(f"ALTER TABLE {self.table} SET TBLPROPERTIES ('{key}' = '{stamp}')")
        hadoop_fs.write_text(spark, marker, json.dumps({"stamp_us": stamp, "table": self.table}) + "\n")
        return stamp

    def _property(self, spark: SparkSession, key: str) -> str | None:
        rows = spark.sql(f"SHOW TBLPROPERTIES {self.table} ('{key}')").collect()
        value = str(rows[0]["value"]) if rows else ""
        return value if value.isdigit() else None  # Spark answers "does not have property" otherwise

    def write(self, rows: DataFrame, batch_id: int) -> None:
        """`rows`: offline_rows(...) without the Glue layout's partition columns."""
        spark = rows.sparkSession
        stamp = self.stamp(spark)
        api, written = at_micros(stamp), at_micros(stamp + batch_id)
        ours = (F.col("write_time") == F.lit(written)) & (F.col("api_invocation_time") == F.lit(api))
        (rows.withColumn("write_time", F.lit(written).cast("timestamp"))
         .withColumn("api_invocation_time", F.lit(api).cast("timestamp"))
         .writeTo(self.table)
         .option("snapshot-property.featurestream.backfill.range-id", self.range_id)
         .option("snapshot-property.featurestream.backfill.batch-id", str(batch_id))
         .overwrite(ours))
