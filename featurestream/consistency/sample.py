"""Which entities a consistency run checks: hot and cold ones, both represented.

Entities are ranked by their number of events in the source (after validity and transforms). The
hot ones are the top decile (at least one entity); half the sample (rounded up) is drawn from them
and the rest from the cold ones, each at random by a seeded hash of the identifier (the same seed
draws the same sample). When one side has too few entities the other fills the sample.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.sql import DataFrame, Window, WindowSpec
from pyspark.sql import functions as F

from featurestream.consistency.events import ENTITY

HOT_SHARE = 0.10


@dataclass(frozen=True)
class SampledEntity:
    entity: str
    hot: bool
    events: int


def draw_sample(events: DataFrame, size: int, seed: int) -> list[SampledEntity]:
    counts = events.groupBy(ENTITY).agg(F.count(F.lit(1)).alias("events")).cache()
    try:
        total = counts.count()
        if total == 0:
            return []
        hot_count = max(1, int(total * HOT_SHARE))
        ranked = counts.withColumn("rank", F.row_number().over(
            _by_count_desc())).withColumn("hot", F.col("rank") <= hot_count)
        order = F.xxhash64(F.col(ENTITY), F.lit(seed))
        want_hot = min(hot_count, (size + 1) // 2)
        want_cold = min(total - hot_count, size - want_hot)
        want_hot = min(hot_count, size - want_cold)
        rows = (ranked.where("hot").orderBy(order).limit(want_hot)
                .unionByName(ranked.where(~F.col("hot")).orderBy(order).limit(want_cold)).collect())
    finally:
        counts.unpersist()
    return sorted((SampledEntity(str(r[ENTITY]), bool(r["hot"]), int(r["events"])) for r in rows),
                  key=lambda s: (not s.hot, s.entity))


def _by_count_desc() -> WindowSpec:

    # Ties broken by identifier: the same input always has the same hot set.
    return Window.orderBy(F.col("events").desc(), F.col(ENTITY))
