"""The compaction rules as DataFrame → DataFrame steps (documented in docs/compaction.md).

* Event time: the feature group's EventTime feature, parsed to an instant (ISO-8601 strings with
  their zone; Fractional values as Unix seconds). The output partition (event date, or date and
  hour) is that instant's UTC calendar date (and hour).
* Versions of a row: rows with the same record identifier and the same event-time instant are
  versions of one row. The kept version is the first by: delete markers first (is_deleted = true;
  a delete at T masks a put at T, as in the online store), then the latest write_time, then the
  latest api_invocation_time, then the remaining columns in ascending order (nulls first), so the
  choice never depends on file order. Rows equal in every column are exact duplicates.
* deletes=keep: the kept versions are the output; delete markers stay as rows.
* deletes=apply: a delete marker at T removes every row of its record with event time <= T,
  the markers included; rows after T (the record written again) stay.
* Snapshot: per record identifier, the kept version with the latest event time.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, LongType, StringType, TimestampType

from featurestream.compaction.errors import CompactionError
from featurestream.compaction.schema import API_INVOCATION_TIME, IS_DELETED, SYSTEM_COLUMNS, WRITE_TIME

EVENT_TS = "_fs_event_ts"
ROW_NUMBER = "_fs_rn"
RANK = "_fs_rk"
DELETED_UNTIL = "deleted_until"
DATE = "event_date"
HOUR = "event_hour"
_MICROS_PER_DAY = 86_400_000_000
_MICROS_PER_HOUR = 3_600_000_000


def partition_columns(partition_by: str) -> list[str]:
    return [DATE, HOUR] if partition_by == "hour" else [DATE]


def with_event_ts(df: DataFrame, event_time: str) -> DataFrame:
    """Add EVENT_TS, the event time as a timestamp (an instant, whatever its spelling)."""
    data_type = df.schema[event_time].dataType
    column = F.col(f"`{event_time}`")
    if isinstance(data_type, StringType):
        parsed = column.cast("timestamp")
    elif isinstance(data_type, DoubleType | LongType):
        parsed = F.timestamp_seconds(column)
    elif isinstance(data_type, TimestampType):
        parsed = column
    else:
        raise CompactionError(f"event time {event_time!r} has unsupported type {data_type.simpleString()}")
    return df.withColumn(EVENT_TS, parsed)


def with_partitions(df: DataFrame, partition_by: str) -> DataFrame:
    """Add the UTC event date (and hour) of EVENT_TS, independent of the session time zone."""
    micros = F.unix_micros(F.col(EVENT_TS))
    out = df.withColumn(DATE, F.date_from_unix_date(F.floor(micros / _MICROS_PER_DAY).cast("int")))
    if partition_by == "hour":
        out = out.withColumn(HOUR, F.pmod(F.floor(micros / _MICROS_PER_HOUR), F.lit(24)).cast("int"))
    return out


def content_columns(columns: list[str], record_identifier: str) -> list[str]:
    """Columns that only break ties (everything but the key and the system columns)."""
    return [c for c in columns if c != record_identifier and c not in SYSTEM_COLUMNS]


def version_order(content: list[str]) -> list[Column]:
    order = [
        F.col(IS_DELETED).desc_nulls_last(),
        F.col(WRITE_TIME).desc_nulls_last(),
        F.col(API_INVOCATION_TIME).desc_nulls_last(),
    ]
    return order + [F.col(f"`{c}`").asc_nulls_first() for c in content]


def rank_versions(df: DataFrame, group_columns: list[str], content: list[str]) -> DataFrame:
    """ROW_NUMBER 1 marks the kept version; RANK < ROW_NUMBER marks an exact duplicate.

    Both use one window, so Spark sorts once. `group_columns` start with the partition columns:
    the sort that the window needs is then also the order the partitioned writer needs.
    """
    window = Window.partitionBy(*[F.col(f"`{c}`") for c in group_columns]).orderBy(*version_order(content))
    return df.withColumn(ROW_NUMBER, F.row_number().over(window)).withColumn(RANK, F.rank().over(window))


def deletion_log(df: DataFrame, record_identifier: str) -> DataFrame:
    """Per record, the latest event time of a delete marker."""
    return (df.where(F.col(IS_DELETED))
            .groupBy(F.col(f"`{record_identifier}`"))
            .agg(F.max(EVENT_TS).alias(DELETED_UNTIL)))


def merge_deletion_logs(older: DataFrame | None, newer: DataFrame, record_identifier: str) -> DataFrame:
    both = newer if older is None else older.unionByName(newer)
    return both.groupBy(F.col(f"`{record_identifier}`")).agg(F.max(DELETED_UNTIL).alias(DELETED_UNTIL))


def apply_deletions(df: DataFrame, log: DataFrame, record_identifier: str) -> DataFrame:
    """Drop the rows a delete marker covers (event time <= the record's latest delete)."""
    joined = df.join(log, on=record_identifier, how="left")
    keep = F.col(DELETED_UNTIL).isNull() | (F.col(EVENT_TS) > F.col(DELETED_UNTIL))
    return joined.where(keep).drop(DELETED_UNTIL)


def latest_rows(df: DataFrame, group_columns: list[str], content: list[str]) -> DataFrame:
    """Per record (and whatever else is in group_columns), the version with the latest event time."""
    window = (Window.partitionBy(*[F.col(f"`{c}`") for c in group_columns])
              .orderBy(F.col(EVENT_TS).desc(), *version_order(content)))
    return df.withColumn(ROW_NUMBER, F.row_number().over(window)).where(F.col(ROW_NUMBER) == 1).drop(ROW_NUMBER)
