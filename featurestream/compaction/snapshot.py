"""The optional `latest/` snapshot: per record identifier, its newest kept row as of the run.

Maintained incrementally: the previous snapshot plus this run's new source rows hold every
candidate. A record's newest kept row is the best version (rules.py) at its newest event time;
the previous snapshot holds the best among the older rows, the new rows every newer version.
Written before the table's commit and named by it (state.py).
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import DataFrame, Observation
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from featurestream.compaction.context import SNAPSHOT_DIR, RunContext
from featurestream.compaction.layout import FILE_KEY, files_for, hash_partition_keys, with_bucket_key
from featurestream.compaction.rules import EVENT_TS, apply_deletions, content_columns, latest_rows, with_event_ts
from featurestream.compaction.sparkconf import JOB_CONF, metrics, scoped_conf
from featurestream.compaction.state import FileEntry
from featurestream.compaction.table import TableState

_DEFAULT_BYTES_PER_ROW = 100.0


def write_snapshot(ctx: RunContext, schema: StructType, new_rows: DataFrame, previous: list[FileEntry],
                   deletions: DataFrame | None, current: TableState | None) -> list[FileEntry]:
    """Write the new snapshot's files (unreferenced until the table's commit names them)."""
    spark, target, summary = ctx.spark, ctx.target, ctx.summary
    frames = [new_rows.drop(*ctx.pcols, EVENT_TS)]
    if previous:
        frames.append(ctx.read_parquet([ctx.out(f.path) for f in previous], schema))
    rows = with_event_ts(reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames), target.event_time)
    if deletions is not None:
        rows = apply_deletions(rows, deletions, target.record_identifier)
    ctx.phase("snapshot")
    # Size by records (one row each) times the bytes per row of the table so far.
    records = rows.agg(F.approx_count_distinct(F.col(f"`{target.record_identifier}`")).alias("n")).first()
    table_rows = int(current.summary.get("total-records", "0")) if current else 0
    table_bytes = int(current.summary.get("total-files-size", "0")) if current else 0
    per_row = table_bytes / table_rows if table_rows else _DEFAULT_BYTES_PER_ROW
    count = files_for((records["n"] if records else 0) * per_row, ctx.settings.target_file_bytes)
    keyed = with_bucket_key(rows, hash_partition_keys(count), target.record_identifier)
    latest = latest_rows(keyed.repartition(count, F.col(FILE_KEY)), [FILE_KEY, target.record_identifier],
                         content_columns(schema.names, target.record_identifier))
    observed = Observation("compaction_snapshot")
    latest = latest.observe(observed, F.count(F.lit(1)).alias("rows"))
    before = ctx.list_relative(SNAPSHOT_DIR)
    with ctx.progress.spark_work(spark, target.name, "snapshot"), scoped_conf(spark, JOB_CONF):
        (latest.select(*[F.col(f"`{c}`") for c in schema.names]).write.mode("append")
         .option("compression", ctx.settings.compression).parquet(ctx.spark_path(ctx.out(SNAPSHOT_DIR))))
    entries = [FileEntry(path=k, bytes=v) for k, v in sorted(ctx.list_relative(SNAPSHOT_DIR).items())
               if k not in before]
    summary.snapshot_rows = metrics(observed).get("rows", 0)
    summary.snapshot_files = len(entries)
    return entries
