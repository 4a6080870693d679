"""`compact` on an Iceberg-format offline store: the group's own table is rewritten in place.

SageMaker replicates such a group into an Iceberg table (DataCatalogConfig, partitioned by day of
write_time) and leaves its upkeep to the owner (AWS: Athena OPTIMIZE and VACUUM). A run reads the
table at its current snapshot, keeps one version per (record identifier, event time) by the same
rules as the Glue-format compaction (rules.py), replaces every data file in one commit (right-sized
files), then expires superseded snapshots. The commit validates that nothing was appended since
the snapshot read (serializable isolation): a flush racing the rewrite fails the run (exit 1, the
table unchanged) and the next run includes it. A table whose current snapshot is our own rewrite
has nothing new: `noop`. Whole-table, not incremental: every run that has new rows rewrites it all.
"""

from __future__ import annotations

import time

from pyspark.sql import Observation
from pyspark.sql import functions as F

from featurestream.compaction import table
from featurestream.compaction.context import RunContext
from featurestream.compaction.errors import ConcurrentCommitError
from featurestream.compaction.rules import EVENT_TS, RANK, ROW_NUMBER, content_columns, rank_versions, with_event_ts
from featurestream.compaction.schema import IS_DELETED
from featurestream.compaction.sparkconf import JOB_CONF, metrics, scoped_conf
from featurestream.compaction.state import CommittedState
from featurestream.compaction.table import STATE_PROPERTY, TableRef


def maintain(ctx: RunContext, ref: TableRef) -> None:
    """Rewrite the Iceberg offline store `ref` with the dedup rules; fills ctx.summary."""
    spark, target, summary, settings = ctx.spark, ctx.target, ctx.summary, ctx.settings
    current = table.load_state(spark, ref, [])
    committed = CommittedState.decode(current.summary.get(STATE_PROPERTY)) if current else None
    summary.version = committed.version if committed else 0
    summary.snapshot_id = current.snapshot_id if current else None
    if current is None or current.snapshot_id is None or committed is not None:
        summary.status = "dry-run" if settings.dry_run else "noop"
        ctx.phase("plan", "nothing appended since the last rewrite" if current else "no table")
        return
    summary.files_in = summary.existing_files_read = int(current.summary.get("total-data-files", "0"))
    summary.bytes_in = int(current.summary.get("total-files-size", "0"))
    if settings.dry_run:
        summary.status = "dry-run"
        return
    ctx.phase("plan", f"rewrite {summary.files_in} data files of {ref}")
    rows = with_event_ts(table.read(spark, ref, current.snapshot_id), target.event_time)
    columns = [f.name for f in current.schema.fields]
    observed_in = Observation("maintenance_in")
    rows = rows.observe(observed_in, F.count(F.lit(1)).alias("rows"))
    content = content_columns(columns, target.record_identifier)
    ranked = rank_versions(rows, [target.record_identifier, EVENT_TS], content)
    observed_rank = Observation("maintenance_versions")
    ranked = ranked.observe(
        observed_rank,
        F.sum((F.col(RANK) < F.col(ROW_NUMBER)).cast("long")).alias("exact"),
        F.sum(((F.col(RANK) == F.col(ROW_NUMBER)) & (F.col(ROW_NUMBER) > 1)).cast("long")).alias("superseded"))
    observed_out = Observation("maintenance_out")
    kept = ranked.where(F.col(ROW_NUMBER) == 1).observe(
        observed_out, F.count(F.lit(1)).alias("rows"), F.sum(F.col(IS_DELETED).cast("long")).alias("tombstones"))
    state = CommittedState(version=summary.version + 1, run_id=ctx.run_id, committed_at=time.time(), source=str(ref))
    ctx.phase("write", f"{ref}")
    with ctx.progress.spark_work(spark, target.name, "write"), scoped_conf(spark, JOB_CONF):
        try:
            table.rewrite_all(kept.select(*[F.col(f"`{c}`") for c in columns]), ref,
                              base_snapshot=current.snapshot_id, state=state.encode(),
                              compression=settings.compression, target_file_bytes=settings.target_file_bytes)
        except Exception as exc:
            if "ValidationException" in str(exc) or "CommitFailedException" in str(exc):
                raise ConcurrentCommitError(f"{ref} changed while this run was rewriting it (a flush?); "
                                            "the next run includes it") from exc
            raise
    counts, out = metrics(observed_rank), metrics(observed_out)
    summary.rows_in = summary.existing_rows_read = metrics(observed_in).get("rows", 0)
    summary.duplicates_removed = counts.get("exact", 0)
    summary.superseded_removed = counts.get("superseded", 0)
    summary.rows_out = out.get("rows", 0)
    summary.tombstones_kept = out.get("tombstones", 0)
    after = table.load_state(spark, ref, [])
    added = after.summary if after else {}
    summary.files_out = int(added.get("added-data-files", "0"))
    summary.bytes_out = int(added.get("added-files-size", "0"))
    summary.partitions_rewritten = int(added.get("changed-partition-count", "0"))
    summary.snapshot_id = after.snapshot_id if after else None
    summary.version = state.version
    summary.status = "compacted"
    ctx.phase("committed", f"snapshot {summary.snapshot_id}")
    summary.snapshots_expired = table.expire_superseded(spark, ref, int(time.time() * 1000),
                                                        int(settings.gc_grace_s * 1000))
