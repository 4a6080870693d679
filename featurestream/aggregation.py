"""Windowed features per entity on Spark's own streaming aggregation.

Definition (the "as of" rule, used by the writer, the docs and the tests):
- Time is cut into tiles of `windows.tile`, aligned to the Unix epoch.
- For an entity whose latest event so far has event time T, the record written online is "as of"
  T: EventTime = T, and a feature over window W aggregates the entity's events with event time in
  [end - W, end), where end is the end of the tile holding T. The window therefore covers the
  current (partial) tile plus the W/tile - 1 tiles before it, and all those events are ≤ T.
- Events later than the watermark (max event time - allowed_lateness) are dropped by Spark's
  state clean-up.
This first engine uses Spark's sliding `window()` and so supports one window length per group.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from featurestream.config.feature_group import Aggregation, FeatureGroupSpec
from featurestream.durations import format_duration
from featurestream.errors import ConfigError

AS_OF = "as_of"


def single_window_ms(spec: FeatureGroupSpec) -> int:
    windows = {w for feature in spec.features for _, w in feature.output_names()}
    if len(windows) != 1:
        raise ConfigError(
            f"conf/feature_groups/{spec.name}.yaml", "features",
            "this engine computes one window length per feature group; found "
            + ", ".join(format_duration(w) for w in sorted(windows)),
        )
    return windows.pop()


def _aggregate(agg: Aggregation, column: str | None) -> Column:
    if agg is Aggregation.COUNT:
        return F.count(F.lit(1))
    assert column is not None
    return F.sum(F.col(column).cast("double"))


def feature_columns(spec: FeatureGroupSpec) -> list[str]:
    return [name for feature in spec.features for name, _ in feature.output_names()]


def windowed_features(events: DataFrame, spec: FeatureGroupSpec) -> DataFrame:
    """Streaming aggregation: one row per (entity, sliding window) with the features and `as_of`."""
    window_ms = single_window_ms(spec)
    tile_ms = spec.windows.tile_ms
    key, event_time = spec.entity.key, spec.event_time.field
    aggregates = [
        _aggregate(feature.agg, feature.column).alias(name)
        for feature in spec.features
        for name, _ in feature.output_names()
    ]
    return (
        events.withWatermark(event_time, f"{spec.windows.allowed_lateness_ms} milliseconds")
        .groupBy(F.window(event_time, f"{window_ms} milliseconds", f"{tile_ms} milliseconds"), F.col(key))
        .agg(*aggregates, F.max(event_time).alias(AS_OF))
        .select(key, F.col("window.end").alias("window_end"), *feature_columns(spec), AS_OF)
    )


def latest_per_entity(updates: DataFrame, spec: FeatureGroupSpec) -> DataFrame:
    """From a micro-batch of updated windows, the one record per entity the rule above defines.

    The entity's newest event time T is the largest `as_of`; of the windows that hold it, the
    one ending first is the window ending with T's tile (the others end in the future).
    """
    key = spec.entity.key
    ranked = Window.partitionBy(key).orderBy(F.col(AS_OF).desc(), F.col("window_end").asc())
    return (
        updates.withColumn("_rank", F.row_number().over(ranked))
        .where(F.col("_rank") == 1)
        .select(key, AS_OF, *feature_columns(spec))
    )
