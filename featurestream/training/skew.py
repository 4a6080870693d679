"""Skewed keys in the as-of join: split a hot key's timeline into buckets, seed each with its past.

The join sorts every key's rows in one window partition. A key holding a large share of the rows
(a test card, a bot, a merchant) makes one task, and one buffered window group, as large as that
share. Because the winner is the max of a record struct (in event-time mode the last record in
sort order is that max), a hot key can be cut into time buckets processed independently, as long
as each bucket starts from the max over all earlier buckets (its *seed*):

1. sample the rows (keys, sort time) -- labels by row, feature groups by file, so the sample
   does not cost a full read; a key whose estimated share reaches `hot_key_share` is hot and
   gets `ceil(share / hot_key_share)` buckets (at least 2, at most `max_buckets`), cut at the
   quantiles of its sampled times;
2. every row of a hot key gets the index of its bucket (rows of other keys: bucket 0);
3. per hot key and bucket, the max record of its feature rows (a small aggregate); the running
   max over earlier buckets becomes one seed row at the start of each bucket.

Boundaries compare unix microseconds, so a label and a feature at the same instant always land in
the same bucket and the (time, side) tie rule is kept. Correctness does not depend on the sample:
a poor sample only makes the buckets uneven.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from featurestream.config.training_set import SkewSpec
from featurestream.training.columns import BOUNDS, BUCKET, LABEL, SIDE, TS

SEED_SIDE = -1
_SAMPLE_SEED = 1729


@dataclass
class BucketPlan:
    spec: SkewSpec
    hot_keys: int = 0
    buckets: list[int] = field(default_factory=list)
    sampled_rows: int = 0
    # The sample's estimate of the pass's rows (labels + features); None without a sample.
    estimated_rows: int | None = None
    frame: DataFrame | None = None

    def describe(self) -> dict[str, object]:
        # Key values are entity ids (card numbers, users): counts only, never the values.
        return {
            "skew_mode": self.spec.mode, "sample_fraction": self.spec.sample_fraction,
            "sampled_rows": self.sampled_rows, "estimated_rows": self.estimated_rows, "hot_keys": self.hot_keys,
            "buckets_per_hot_key": self.buckets,
        }


@dataclass(frozen=True)
class SampleSource:
    """Rows (key columns, TS) standing for `rate` of one side's rows (e.g. a subset of its files)."""

    frame: DataFrame
    rate: float = 1.0


def plan(sources: Sequence[SampleSource], key_cols: Sequence[str], spec: SkewSpec) -> BucketPlan:
    """Find hot keys in a weighted sample of the join's rows and cut their timelines into buckets.

    Each source is sampled down to about `sample_fraction` of the rows it stands for; a sampled row
    weighs 1 / (its effective rate), so a key's share is estimated across sides sampled unequally.
    """
    result = BucketPlan(spec)
    if spec.mode == "off" or not sources:
        return result
    parts = []
    for source in sources:
        fraction = min(1.0, spec.sample_fraction / source.rate)
        rate = source.rate * fraction
        rows = source.frame.where(F.col(TS).isNotNull()).select(*key_cols, F.unix_micros(F.col(TS)).alias("t"))
        if fraction < 1.0:
            rows = rows.sample(fraction=fraction, seed=_SAMPLE_SEED)
        parts.append(rows.withColumn("w", F.lit(1.0 / rate)))
    sample = parts[0]
    for part in parts[1:]:
        sample = sample.unionByName(part)
    sample = sample.cache()
    spark = sources[0].frame.sparkSession
    try:
        totals = sample.agg(F.count(F.lit(1)).alias("n"), F.sum("w").alias("w")).first()
        assert totals is not None
        result.sampled_rows = int(totals["n"])
        result.estimated_rows = round(float(totals["w"] or 0.0))
        threshold = float(totals["w"] or 0.0) * spec.hot_key_share
        # The sample is small: one task aggregates it, no shuffle over spark.sql.shuffle.partitions.
        local = sample.coalesce(1)
        hot = local.groupBy(*key_cols).agg(F.sum("w").alias("w")).where(F.col("w") >= F.lit(threshold)).collect()
        if not hot or result.sampled_rows == 0:
            return result
        hot_frame = spark.createDataFrame(
            [tuple(row[c] for c in key_cols) for row in hot], schema=_key_schema(sample, key_cols)
        )
        times = (
            local.join(F.broadcast(hot_frame), on=list(key_cols), how="left_semi")
            .groupBy(*key_cols).agg(F.collect_list("t").alias("ts"), F.sum("w").alias("w"))
            .collect()
        )
    finally:
        sample.unpersist()
    bucket_rows: list[tuple[object, ...]] = []
    total_weight = float(totals["w"])
    for row in times:
        share = float(row["w"]) / total_weight
        count = min(spec.max_buckets, max(2, math.ceil(share / spec.hot_key_share)))
        cuts = np.quantile(np.asarray(row["ts"], dtype=np.int64), [i / count for i in range(1, count)])
        bounds = sorted({int(c) for c in cuts})
        bucket_rows.append((*[row[c] for c in key_cols], bounds))
        result.buckets.append(len(bounds) + 1)
    schema = T.StructType([*_key_schema(sample, key_cols).fields, T.StructField(BOUNDS, T.ArrayType(T.LongType()))])
    result.frame = spark.createDataFrame(bucket_rows, schema=schema)
    result.hot_keys = len(bucket_rows)
    return result


def _key_schema(frame: DataFrame, key_cols: Sequence[str]) -> T.StructType:
    return T.StructType([T.StructField(c, frame.schema[c].dataType, True) for c in key_cols])


def _bucket_of(bounds: Column) -> Column:
    t = F.unix_micros(F.col(TS))
    return F.when(bounds.isNull(), F.lit(0)).otherwise(F.size(F.filter(bounds, lambda b: b <= t)))


def assign_buckets(union: DataFrame, bucket_plan: BucketPlan, key_cols: Sequence[str]) -> DataFrame:
    if bucket_plan.frame is None:
        return union  # no hot key: no bucket column, one less field in every shuffled row
    joined = union.join(F.broadcast(bucket_plan.frame), on=list(key_cols), how="left")
    return joined.withColumn(BUCKET, _bucket_of(F.col(BOUNDS))).drop(BOUNDS)


def seed_rows(feature_rows: DataFrame, bucket_plan: BucketPlan, key_cols: Sequence[str],
              record_names: Sequence[str], label_type: T.DataType) -> DataFrame:
    """One row per (hot key, bucket > 0) carrying the max record of all earlier buckets."""
    assert bucket_plan.frame is not None
    keys = list(key_cols)
    hot = F.broadcast(bucket_plan.frame)
    partial = (
        feature_rows.join(hot.select(*keys), on=keys, how="left_semi")
        .groupBy(*keys, BUCKET).agg(*[F.max(n).alias(n) for n in record_names])
    )
    grid = hot.select(*keys, F.explode(F.sequence(F.lit(0), F.size(BOUNDS))).alias(BUCKET))
    earlier = Window.partitionBy(*keys).orderBy(BUCKET).rowsBetween(Window.unboundedPreceding, -1)
    seeds = grid.join(partial, on=[*keys, BUCKET], how="left").select(
        *keys, BUCKET, *[F.max(n).over(earlier).alias(n) for n in record_names]
    )
    any_record = F.lit(False)
    for name in record_names:
        any_record = any_record | F.col(name).isNotNull()
    # A null time sorts first, and the seed side sorts before labels and features of equal time.
    return seeds.where(any_record).select(
        *keys, F.lit(None).cast(T.TimestampType()).alias(TS), F.lit(SEED_SIDE).alias(SIDE),
        F.lit(None).cast(label_type).alias(LABEL), *record_names, BUCKET,
    )
