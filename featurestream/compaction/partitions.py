"""Rewriting the touched partitions: new rows + their current files → the rules → sized files."""

from __future__ import annotations

from functools import reduce

from pyspark.sql import DataFrame, Observation
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from featurestream.compaction import table
from featurestream.compaction.context import RunContext
from featurestream.compaction.errors import ConcurrentCommitError, LayoutError
from featurestream.compaction.layout import (
    FILE_KEY,
    assign_file_keys,
    files_for,
    partition_key_of_hour,
    plan_frame,
    with_file_key,
)
from featurestream.compaction.rules import (
    EVENT_TS,
    RANK,
    ROW_NUMBER,
    apply_deletions,
    content_columns,
    rank_versions,
    with_event_ts,
)
from featurestream.compaction.schema import IS_DELETED
from featurestream.compaction.sparkconf import JOB_CONF, metrics, scoped_conf
from featurestream.compaction.state import CommittedState
from featurestream.compaction.table import TableState
from featurestream.connectors.offline_store import SourceFile

# Iceberg would roll a task's file over at its target size: ours is the planned size, with room
# for the estimate's error, so that each task still writes one file.
_ROLL_OVER_FACTOR = 4
_LAYOUT_ERROR = ("source rows have an event time outside the hour partition their file is in; "
                 "this is not SageMaker's offline-store layout")


def files_per_partition(
    ctx: RunContext, existing: dict[str, list[tuple[str, int]]], new: list[SourceFile], touched: list[str],
    ratio: float,
) -> dict[str, int]:
    """Files per touched partition: what it holds now plus the new source bytes times `ratio`."""
    estimate: dict[str, float] = {key: 0.0 for key in touched}
    for file in new:
        estimate[partition_key_of_hour(file.hour, ctx.settings.partition_by)] += file.size * ratio
    for key in touched:
        estimate[key] += sum(size for _, size in existing.get(key, []))
    return {key: files_for(value, ctx.settings.target_file_bytes) for key, value in estimate.items()}


def _count(frame: DataFrame, name: str) -> tuple[DataFrame, Observation]:
    observation = Observation(name)
    return frame.observe(observation, F.count(F.lit(1)).alias("rows")), observation


def write_partitions(
    ctx: RunContext,
    touched: list[str],
    sizes: dict[str, int],
    schema: StructType,
    new_rows: DataFrame,
    existing: dict[str, list[tuple[str, int]]],
    base_snapshot: int | None,
    deletions: DataFrame | None,
    state: CommittedState,
) -> TableState | None:
    """Replace the touched partitions in one Iceberg commit whose summary carries `state`; returns
    the table's state after the commit.

    One shuffle (by file key) and one sort (the dedup window's, which is also the writer's
    order); the observations collect the summary's counts during that single pass.
    """
    spark, target, summary = ctx.spark, ctx.target, ctx.summary
    tasks = sum(sizes.values())
    plan = plan_frame(spark, assign_file_keys(sizes), ctx.settings.partition_by)
    existing_count = sum(len(files) for files in existing.values())
    ctx.phase("plan", f"{len(touched)} partitions, {tasks} files, {existing_count} current files to merge")

    frames = []
    new_counted, observed_new = _count(new_rows, "compaction_new")
    frames.append(new_counted)
    observed_old = None
    if existing and base_snapshot is not None:
        current = with_event_ts(table.read(spark, target.table_ref, base_snapshot, sorted(existing)),
                                target.event_time)
        current, observed_old = _count(current, "compaction_existing")
        frames.append(current)
    rows = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)

    observed_deletes = None
    if deletions is not None:
        rows, observed_pre = _count(rows, "compaction_before_deletes")
        rows, observed_post = _count(apply_deletions(rows, deletions, target.record_identifier),
                                     "compaction_after_deletes")
        observed_deletes = (observed_pre, observed_post)

    keyed = with_file_key(rows, plan, ctx.pcols, target.record_identifier)
    # A row whose partition is not being replaced would be appended outside the overwrite: fail the
    # job (and so the commit) instead.
    keyed = keyed.withColumn(FILE_KEY, F.coalesce(F.col(FILE_KEY), F.raise_error(F.lit(_LAYOUT_ERROR))))
    keyed = keyed.repartition(tasks, F.col(FILE_KEY))
    ranked = rank_versions(keyed, [*ctx.pcols, FILE_KEY, target.record_identifier, EVENT_TS],
                           content_columns(schema.names, target.record_identifier))
    observed_rank = Observation("compaction_versions")
    ranked = ranked.observe(
        observed_rank,
        F.sum((F.col(RANK) < F.col(ROW_NUMBER)).cast("long")).alias("exact"),
        F.sum(((F.col(RANK) == F.col(ROW_NUMBER)) & (F.col(ROW_NUMBER) > 1)).cast("long")).alias("superseded"),
    )
    observed_out = Observation("compaction_out")
    kept = ranked.where(F.col(ROW_NUMBER) == 1).observe(
        observed_out, F.count(F.lit(1)).alias("rows"), F.sum(F.col(IS_DELETED).cast("long")).alias("tombstones"))

    ctx.phase("write", f"{tasks} files")
    with ctx.progress.spark_work(spark, target.name, "write"), scoped_conf(spark, JOB_CONF):
        try:
            table.replace_partitions(
                kept.select(*[F.col(f"`{c}`") for c in [*schema.names, *ctx.pcols]]), target.table_ref, touched,
                base_snapshot=base_snapshot, state=state.encode(), compression=ctx.settings.compression,
                max_file_bytes=ctx.settings.target_file_bytes * _ROLL_OVER_FACTOR)
        except Exception as exc:
            if _LAYOUT_ERROR in str(exc):
                raise LayoutError(_LAYOUT_ERROR) from None
            if "CommitFailedException" in str(exc) or "ValidationException" in str(exc):
                raise ConcurrentCommitError(f"table {target.table_ref} changed while this run was writing: "
                                            f"{str(exc).splitlines()[0]}") from exc
            raise

    counts = metrics(observed_rank)
    out = metrics(observed_out)
    summary.rows_in = metrics(observed_new).get("rows", 0)
    summary.existing_files_read = existing_count
    summary.existing_rows_read = metrics(observed_old).get("rows", 0) if observed_old else 0
    summary.duplicates_removed = counts.get("exact", 0)
    summary.superseded_removed = counts.get("superseded", 0)
    if observed_deletes is not None:
        pre, post = (metrics(o).get("rows", 0) for o in observed_deletes)
        summary.deleted_rows_removed = pre - post
    summary.rows_out = out.get("rows", 0)
    summary.tombstones_kept = out.get("tombstones", 0)

    committed = table.load_state(spark, target.table_ref, ctx.pcols)
    added = committed.summary if committed else {}
    summary.files_out = int(added.get("added-data-files", "0"))
    summary.bytes_out = int(added.get("added-files-size", "0"))
    summary.partitions = sorted(touched)
    summary.partitions_rewritten = len(touched)
    ctx.phase("written", f"{summary.files_out} files, {summary.rows_out} rows")
    return committed
