"""The newest offline-store row of each sampled entity: compacted output plus files not compacted yet.

The group's offline store (`<ResolvedOutputS3Uri>` `year=/month=/day=/hour=` Parquet, written by the
Feature Store and by backfills) is read whole, except the files the compaction's ledger says are
already in the compacted output; the compacted output (when given: the group's compacted Iceberg
table, by its location) is read at its current snapshot, whose summary carries that ledger
(`featurestream.compaction.reader.compacted_at`). An Iceberg-format group's offline store is one
table (SageMaker's `DataCatalogConfig` table in the profile's catalog; `compact` rewrites it in
place): it is read whole at its current snapshot instead. Rows marked `is_deleted` count as the
entity's newest row too (a delete is what the offline store holds then).
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from featurestream.compaction.ledger import read_ledger
from featurestream.compaction.reader import compacted_at
from featurestream.compaction.storage import open_store
from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.connectors.offline_store import StoreUri
from featurestream.connectors.provisioning import feature_definitions
from featurestream.consistency.recompute import event_ms
from featurestream.io import hadoop_fs, paths

_HOURS = "year=*/month=*/day=*/hour=*/*.parquet"


def _comparable(uri: str) -> str:
    """One spelling for a file whatever wrote its name (s3a:// or s3://, file: or a bare path)."""
    for prefix in ("s3a://", "s3n://"):
        if uri.startswith(prefix):
            return "s3://" + uri[len(prefix):]
    return uri.removeprefix("file://").removeprefix("file:")


def uncompacted_files(spark: SparkSession, data_root: str, compacted: str | None,
                      region: str | None) -> tuple[list[str], DataFrame | None]:
    """(the offline-store files the compaction has not consumed, the compacted rows)."""
    files = hadoop_fs.glob(spark, paths.join(data_root, _HOURS))
    if not compacted:
        return files, None
    root = StoreUri.parse(compacted)
    frame, state = compacted_at(spark, root)
    done = {_comparable(u) for u in read_ledger(open_store(root, region), root, state.ledger)}
    return [f for f in files if _comparable(f) not in done], frame


def newest_rows(spark: SparkSession, spec: FeatureGroupSpec, data_root: str | None, compacted: str | None,
                region: str | None, entities: list[str], table: str | None = None,
                ) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """(entity → newest row with `_fs_event_ms`, figures: files read).

    `table`: the Spark name of an Iceberg-format group's offline table (then `data_root` and
    `compacted` are not read)."""
    key, event_time = spec.entity.key, spec.event_time.field
    files: list[str] = []
    compacted_rows: DataFrame | None = None
    if table is not None:
        compacted_rows = spark.table(table)
    else:
        assert data_root is not None
        files, compacted_rows = uncompacted_files(spark, data_root, compacted, region)
    names = [key, event_time, *_features(spec), "write_time", "is_deleted"]
    frames: list[DataFrame] = []
    if files:
        frames.append(_select(spark.read.parquet(*files), names))
    if compacted_rows is not None:
        frames.append(_select(compacted_rows, names))
    figures = {"uncompacted_files": len(files), "compacted": int(bool(compacted)), "iceberg_table": int(bool(table))}
    if not frames or not entities:
        return {}, figures
    rows = frames[0]
    for other in frames[1:]:
        rows = rows.unionByName(other, allowMissingColumns=True)
    wanted = spark.createDataFrame([(e,) for e in entities], f"{key} string")
    rows = (rows.withColumn(key, F.col(f"`{key}`").cast("string")).join(F.broadcast(wanted), key)
            .withColumn("_fs_event_ms", event_ms(event_time))
            .withColumn("write_time", F.col("write_time").cast("timestamp")))
    order = Window.partitionBy(key).orderBy(F.col("_fs_event_ms").desc(), F.col("write_time").desc())
    newest = rows.withColumn("_fs_rank", F.row_number().over(order)).where("_fs_rank = 1").drop("_fs_rank")
    return {str(r[key]): r.asDict() for r in newest.collect()}, figures


def _features(spec: FeatureGroupSpec) -> list[str]:
    skip = {spec.entity.key, spec.event_time.field}
    return [d["FeatureName"] for d in feature_definitions(spec) if d["FeatureName"] not in skip]


def _select(frame: DataFrame, names: list[str]) -> DataFrame:
    present = [n for n in names if n in frame.columns]
    return frame.select(*[F.col(f"`{n}`") for n in present])
