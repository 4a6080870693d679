"""Point-in-time ("as of") join of label rows with compacted feature groups, sort-based.

Definition (the docs and the tests use exactly this):
- A feature row is *eligible* for a label row with timestamp t when its keys equal the row's keys
  and its EventTime <= t (< t with `strictly_before`). In availability mode it must also have been
  written by then: write_time <= t (< t) -- what the online store could have served at t.
- Among eligible rows the winner is the one with the greatest (EventTime, is_deleted, write_time,
  api_invocation_time): the newest EventTime; at the same EventTime a delete marker masks a put
  (as in the online store, and as compaction keeps versions), then the later write wins.
- If the winner is a delete (is_deleted), or is older than the TTL (t - EventTime > ttl), the
  row gets nulls for that group. Labels without a timestamp or key get nulls.

How: for each set of groups sharing the same keys, label rows and feature rows are unioned and
sorted once per key by (sort time, side): sort time is EventTime, or greatest(EventTime,
write_time) in availability mode (the moment a row became eligible). A running `max` of the
struct (EventTime, is_deleted, write_time, api_invocation_time, features...) over that order gives
every label row its winner: struct ordering is field by field, so max = the winner above, and
max is associative, which is what lets skewed keys be split into time buckets (see skew.py). Cost
is one shuffle and one sort of (labels + features) -- never the per-key product that an
inequality join followed by row_number builds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from featurestream.config.training_set import SkewSpec
from featurestream.training import skew
from featurestream.training.columns import API_TIME, BUCKET, DELETED, EVENT_TIME, LABEL, SIDE, TS, WRITE_TIME


@dataclass(frozen=True)
class FeatureSide:
    """One feature group, normalised: label-side key names, metadata columns, features by output name."""

    name: str
    frame: DataFrame
    keys: tuple[str, ...]
    features: tuple[str, ...]
    ttl_ms: int | None = None
    event_time_output: str | None = None


@dataclass(frozen=True)
class PitOptions:
    strictly_before: bool = False
    availability: bool = False
    skew: SkewSpec = field(default_factory=SkewSpec)


@dataclass
class PitReport:
    """What the join did, for the manifest."""

    passes: list[dict[str, object]] = field(default_factory=list)


def _record_column(index: int) -> str:
    return f"_fs_r{index}"


def _record_struct(side: FeatureSide) -> Column:
    """The struct whose ordering is the winner rule: EventTime, is_deleted, write_time, api time first."""
    return F.struct(
        F.col(EVENT_TIME).alias("et"), F.col(DELETED).alias("del"), F.col(WRITE_TIME).alias("wt"),
        F.col(API_TIME).alias("api"),
        *[F.col(name).alias(f"f{i}") for i, name in enumerate(side.features)],
    )


def _sides_by_keys(sides: Sequence[FeatureSide]) -> list[list[FeatureSide]]:
    """Groups that share their keys are joined in one pass (one shuffle, one sort)."""
    passes: dict[tuple[str, ...], list[FeatureSide]] = {}
    for side in sides:
        passes.setdefault(side.keys, []).append(side)
    return list(passes.values())


def as_of_join(labels: DataFrame, timestamp_column: str, sides: Sequence[FeatureSide],
               options: PitOptions, report: PitReport | None = None) -> DataFrame:
    """Every label row, unchanged and in no particular order, with each group's features as of its time."""
    result = labels
    for group in _sides_by_keys(sides):
        result = _one_pass(result, timestamp_column, group, options, report)
    return result


def _one_pass(labels: DataFrame, timestamp_column: str, sides: list[FeatureSide], options: PitOptions,
              report: PitReport | None) -> DataFrame:
    keys = sides[0].keys
    key_cols = [f"_fs_k{i}" for i in range(len(keys))]
    label_side, feature_side = (0, 1) if options.strictly_before else (1, 0)
    label_columns = labels.columns
    label_type = labels.select(F.struct(*label_columns).alias(LABEL)).schema[LABEL].dataType
    key_types = [labels.schema[k].dataType for k in keys]

    records = [side.frame.select(_record_struct(side).alias("r")) for side in sides]
    record_types = [r.schema["r"].dataType for r in records]
    record_names = [_record_column(i) for i in range(len(sides))]

    def nulls_except(index: int | None) -> list[Column]:
        return [
            (_record_struct(sides[i]) if i == index else F.lit(None).cast(record_types[i])).alias(name)
            for i, name in enumerate(record_names)
        ]

    label_ts = F.col(timestamp_column).cast(T.TimestampType())
    label_rows = labels.select(
        *[F.col(k).alias(c) for k, c in zip(keys, key_cols, strict=True)],
        label_ts.alias(TS), F.lit(label_side).alias(SIDE),
        F.struct(*label_columns).alias(LABEL), *nulls_except(None),
    )
    union = label_rows
    for index, side in enumerate(sides):
        sort_time = F.greatest(EVENT_TIME, WRITE_TIME) if options.availability else F.col(EVENT_TIME)
        feature_rows = side.frame.where(
            F.col(EVENT_TIME).isNotNull() & _keys_not_null(side.keys)
        ).select(
            *[F.col(k).cast(t).alias(c) for k, t, c in zip(keys, key_types, key_cols, strict=True)],
            sort_time.alias(TS), F.lit(feature_side).alias(SIDE),
            F.lit(None).cast(label_type).alias(LABEL), *nulls_except(index),
        )
        union = union.unionByName(feature_rows)

    plan = skew.plan(union, key_cols, options.skew)
    bucketed = skew.assign_buckets(union, plan, key_cols)
    if plan.hot_keys:
        is_feature = F.col(SIDE) == feature_side
        bucketed = bucketed.unionByName(skew.seed_rows(bucketed.where(is_feature), plan, key_cols, record_names,
                                                       label_type))
    if report is not None:
        report.passes.append({"groups": [s.name for s in sides], "keys": list(keys), **plan.describe()})

    ordered = Window.partitionBy(*key_cols, BUCKET).orderBy(TS, SIDE).rowsBetween(
        Window.unboundedPreceding, Window.currentRow)
    running = bucketed.select(
        F.col(TS), F.col(SIDE), F.col(LABEL), *[F.max(name).over(ordered).alias(name) for name in record_names]
    ).where(F.col(SIDE) == label_side)

    outputs: list[Column] = [F.col(f"{LABEL}.{c}").alias(c) for c in label_columns]
    for side, name in zip(sides, record_names, strict=True):
        record = F.col(name)
        valid = record.isNotNull() & ~record["del"] & F.col(TS).isNotNull()
        if side.ttl_ms is not None:
            valid = valid & ((F.unix_micros(F.col(TS)) - F.unix_micros(record["et"])) <= F.lit(side.ttl_ms * 1000))
        if side.event_time_output:
            outputs.append(F.when(valid, record["et"]).alias(side.event_time_output))
        outputs.extend(F.when(valid, record[f"f{i}"]).alias(out) for i, out in enumerate(side.features))
    return running.select(*outputs)


def _keys_not_null(keys: Sequence[str]) -> Column:
    condition = F.lit(True)
    for key in keys:
        condition = condition & F.col(key).isNotNull()
    return condition
