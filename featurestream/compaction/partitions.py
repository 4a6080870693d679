"""Rewriting the touched partitions: new rows + their current files → the rules → sized files."""

from __future__ import annotations

from functools import reduce

from pyspark.sql import DataFrame, Observation
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from featurestream.compaction.context import DATA_DIR, RunContext
from featurestream.compaction.errors import LayoutError
from featurestream.compaction.layout import (
    FILE_KEY,
    assign_file_keys,
    files_for,
    partition_key_of_hour,
    partition_key_of_path,
    plan_frame,
    with_file_key,
)
from featurestream.compaction.manifest import FileEntry, Manifest
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
from featurestream.connectors.offline_store import SourceFile


def files_per_partition(
    ctx: RunContext, manifest: Manifest | None, new: list[SourceFile], touched: list[str], ratio: float
) -> dict[str, int]:
    """Files per touched partition: what it holds now plus the new source bytes times `ratio`."""
    estimate: dict[str, float] = {key: 0.0 for key in touched}
    for file in new:
        estimate[partition_key_of_hour(file.hour, ctx.settings.partition_by)] += file.size * ratio
    if manifest:
        for key in touched:
            if key in manifest.partitions:
                estimate[key] += manifest.partitions[key].bytes
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
    existing: list[FileEntry],
    deletions: DataFrame | None,
) -> dict[str, list[FileEntry]]:
    """Write the touched partitions' new files (unreferenced until the manifest switch).

    One shuffle (by file key) and one sort (the dedup window's, which is also the writer's
    order); the observations collect the summary's counts during that single pass.
    """
    spark, target, summary = ctx.spark, ctx.target, ctx.summary
    tasks = sum(sizes.values())
    plan = plan_frame(spark, assign_file_keys(sizes), ctx.settings.partition_by)
    ctx.phase("plan", f"{len(touched)} partitions, {tasks} files, {len(existing)} current files to merge")

    frames = []
    new_counted, observed_new = _count(new_rows, "compaction_new")
    frames.append(new_counted)
    observed_old = None
    if existing:
        current = with_event_ts(ctx.read_output([f.path for f in existing], schema), target.event_time)
        current, observed_old = _count(current, "compaction_existing")
        frames.append(current)
    rows = reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)

    observed_deletes = None
    if deletions is not None:
        rows, observed_pre = _count(rows, "compaction_before_deletes")
        rows, observed_post = _count(apply_deletions(rows, deletions, target.record_identifier),
                                     "compaction_after_deletes")
        observed_deletes = (observed_pre, observed_post)

    keyed = with_file_key(rows, plan, ctx.pcols, target.record_identifier).repartition(tasks, F.col(FILE_KEY))
    ranked = rank_versions(keyed, [*ctx.pcols, FILE_KEY, target.record_identifier, EVENT_TS],
                           content_columns(schema.names, target.record_identifier))
    observed_rank = Observation("compaction_versions")
    ranked = ranked.observe(
        observed_rank,
        F.sum((F.col(RANK) < F.col(ROW_NUMBER)).cast("long")).alias("exact"),
        F.sum(((F.col(RANK) == F.col(ROW_NUMBER)) & (F.col(ROW_NUMBER) > 1)).cast("long")).alias("superseded"),
        F.sum(F.col(FILE_KEY).isNull().cast("long")).alias("unplanned"),
    )
    observed_out = Observation("compaction_out")
    kept = ranked.where(F.col(ROW_NUMBER) == 1).observe(
        observed_out, F.count(F.lit(1)).alias("rows"), F.sum(F.col(IS_DELETED).cast("long")).alias("tombstones"))

    before = ctx.list_relative(DATA_DIR)
    ctx.phase("write", f"{tasks} files")
    with ctx.progress.spark_work(spark, target.name, "write"), scoped_conf(spark, JOB_CONF):
        (kept.select(*[F.col(f"`{c}`") for c in [*schema.names, *ctx.pcols]])
         .write.mode("append").partitionBy(*ctx.pcols)
         .option("compression", ctx.settings.compression)
         .parquet(ctx.spark_path(ctx.out(DATA_DIR))))

    counts = metrics(observed_rank)
    if counts.get("unplanned"):
        raise LayoutError(f"{counts['unplanned']} source rows have an event time outside the hour partition "
                          "their file is in; this is not SageMaker's offline-store layout")
    out = metrics(observed_out)
    summary.rows_in = metrics(observed_new).get("rows", 0)
    summary.existing_files_read = len(existing)
    summary.existing_rows_read = metrics(observed_old).get("rows", 0) if observed_old else 0
    summary.duplicates_removed = counts.get("exact", 0)
    summary.superseded_removed = counts.get("superseded", 0)
    if observed_deletes is not None:
        pre, post = (metrics(o).get("rows", 0) for o in observed_deletes)
        summary.deleted_rows_removed = pre - post
    summary.rows_out = out.get("rows", 0)
    summary.tombstones_kept = out.get("tombstones", 0)

    written: dict[str, list[FileEntry]] = {}
    for relative, size in sorted(ctx.list_relative(DATA_DIR).items()):
        if relative in before:
            continue
        partition = partition_key_of_path(relative, DATA_DIR)
        if partition is None or partition not in touched:
            raise LayoutError(f"the write produced {relative}, outside the partitions it rewrites")
        written.setdefault(partition, []).append(FileEntry(path=relative, bytes=size))
    summary.files_out = sum(len(v) for v in written.values())
    summary.bytes_out = sum(f.bytes for v in written.values() for f in v)
    summary.partitions = sorted(touched)
    summary.partitions_rewritten = len(touched)
    ctx.phase("written", f"{summary.files_out} files, {summary.rows_out} rows")
    return written
