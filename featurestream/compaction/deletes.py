"""deletes=apply: the log of the newest delete time per record, and the partitions it reaches.

The log lives under `_compaction/tombstones/` and is named by the table's snapshot (state.py). Each run merges the
new delete markers into it (a new version of the log, committed with the rows), and finds the
already-compacted partitions holding rows of records whose delete time moved forward: those
partitions are rewritten too, so a delete removes a record's history wherever it is.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Observation
from pyspark.sql import functions as F
from pyspark.sql.types import StructField, StructType, TimestampType

from featurestream.compaction.context import TOMBSTONE_DIR, RunContext
from featurestream.compaction.rules import (
    DATE,
    DELETED_UNTIL,
    EVENT_TS,
    HOUR,
    deletion_log,
    merge_deletion_logs,
    with_event_ts,
)
from featurestream.compaction.sparkconf import JOB_CONF, metrics, scoped_conf
from featurestream.compaction.state import CommittedState, FileEntry
from featurestream.compaction.table import read

_PREVIOUS = "_fs_previous"


def update_deletion_log(
    ctx: RunContext, committed: CommittedState | None, base_snapshot: int | None, new_rows: DataFrame,
    schema: StructType,
) -> tuple[list[FileEntry] | None, DataFrame | None, set[str]]:
    """(log files of the new state, the log as a frame, partitions the new deletes reach)."""
    target = ctx.target
    log_schema = StructType([StructField(target.record_identifier, schema[target.record_identifier].dataType),
                             StructField(DELETED_UNTIL, TimestampType())])
    old_entries = committed.tombstones if committed else None
    old_log = ctx.read_parquet([ctx.out(f.path) for f in old_entries], log_schema) if old_entries else None
    observed = Observation("compaction_new_deletes")
    new_deletes = deletion_log(new_rows, target.record_identifier).observe(observed, F.count(F.lit(1)).alias("n"))
    merged = merge_deletion_logs(old_log, new_deletes, target.record_identifier)
    before = ctx.list_relative(TOMBSTONE_DIR)
    ctx.phase("deletes")
    with scoped_conf(ctx.spark, JOB_CONF):
        merged.coalesce(1).write.mode("append").parquet(ctx.spark_path(ctx.out(TOMBSTONE_DIR)))
    fresh = {k: v for k, v in ctx.list_relative(TOMBSTONE_DIR).items() if k not in before}
    if not metrics(observed).get("n"):
        ctx.store.delete_many([ctx.out(k) for k in fresh])  # nothing new: keep the old log
        return old_entries, old_log, set()
    entries = [FileEntry(path=k, bytes=v) for k, v in sorted(fresh.items())]
    log_df = ctx.read_parquet([ctx.out(e.path) for e in entries], log_schema)
    if base_snapshot is None:
        return entries, log_df, set()
    changed = log_df
    if old_log is not None:
        previous = old_log.withColumnRenamed(DELETED_UNTIL, _PREVIOUS)
        changed = (log_df.join(previous, on=target.record_identifier, how="left")
                   .where(F.col(_PREVIOUS).isNull() | (F.col(DELETED_UNTIL) > F.col(_PREVIOUS)))
                   .drop(_PREVIOUS))
    current = read(ctx.spark, target.table_ref, base_snapshot)
    current = with_event_ts(current.select(target.record_identifier, target.event_time, *ctx.pcols),
                            target.event_time)
    hits = (current.join(changed, on=target.record_identifier)
            .where(F.col(EVENT_TS) <= F.col(DELETED_UNTIL)).select(*ctx.pcols).distinct().collect())
    affected = set()
    for row in hits:
        key = f"{DATE}={row[DATE]:%Y-%m-%d}"
        affected.add(f"{key}/{HOUR}={row[HOUR]}" if ctx.settings.partition_by == "hour" else key)
    return entries, log_df, affected
