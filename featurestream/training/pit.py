"""Point-in-time ("as of") join of label rows with compacted feature groups, sort-based.

Definition (the docs and the tests use exactly this):
- Event-time mode: a feature row is *eligible* for a label row with timestamp t when its keys
  equal the row's keys and its EventTime <= t (< t with `strictly_before`). The winner is the one
  with the greatest (EventTime, is_deleted, write_time, api_invocation_time): the newest
  EventTime; at the same EventTime a delete marker masks a put, then the later write wins (the
  order in which compaction keeps versions).
- Availability mode is what GetRecord returned at t, write by write: eligible are the rows whose
  write reached the online store by then, api_invocation_time <= t (< t), whatever their
  EventTime. The online store replaces a record only with a strictly newer EventTime (PutRecord
  and SoftDelete alike; an older or equal write goes to the offline store only), so the record it
  holds is the *first written* row of the greatest EventTime: the winner is the greatest
  (EventTime, -api_invocation_time); a delete marker wins only a tie within one millisecond.
- If the winner is a delete (is_deleted), or is older than the TTL (t - EventTime > ttl), the
  row gets nulls for that group. Labels without a timestamp or key get nulls.

How: for each set of groups sharing the same keys, label rows and feature rows are unioned and
sorted once per key by (sort time, side): sort time is EventTime, or api_invocation_time in
availability mode (the moment a row became eligible); side puts features before
labels of the same time (after them with `strictly_before`). Every label row's winner is then the
running max of the struct (EventTime, is_deleted, write_time, api_invocation_time, features...)
over the rows before it: struct ordering is field by field, so that max is the winner above. In
event-time mode the sort also orders versions by (is_deleted, write_time, api time), so the max
is just the last record seen. Max is associative, which lets skewed keys be split into time
buckets (skew.py). Cost: one shuffle and one sort of (labels + features) -- never the per-key
product that an inequality join followed by row_number builds.

Before that shuffle, feature rows are reduced where they are read (`_interval_reducer`): rows of a
key between the same two consecutive label times are eligible for the same labels, so each task
keeps only the max per (key, label interval), and drops rows no label can see. Associativity
again makes this exact; it is skipped (same result, more rows shuffled) for label sets too large
to broadcast.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from featurestream.config.training_set import JoinSpec, SkewSpec
from featurestream.training import skew
from featurestream.training.columns import (
    API_TIME,
    BUCKET,
    DELETED,
    EVENT_TIME,
    HASH,
    LABEL,
    SIDE,
    TS,
    WRITE_TIME,
)

# Measured on 1M labels x 10M features, local[2]: 32 sorts of ~350k rows used 10% less CPU than 16.
ROWS_PER_SORT = 400_000
# Rows sorted per label row once feature rows are reduced before the shuffle: the label plus
# ~2.7 feature rows on the benchmark (1M labels x 10M features, 100k keys, 5 feature tasks).
REDUCED_ROWS_PER_LABEL = 4


@dataclass(frozen=True)
class FeatureSide:
    """One feature group, normalised: label-side key names, metadata columns, features by output name."""

    name: str
    frame: DataFrame
    keys: tuple[str, ...]
    features: tuple[str, ...]
    ttl_ms: int | None = None
    event_time_output: str | None = None
    # The same normalised columns over a subset of the files (rate = its share), for the skew sample.
    sample: DataFrame | None = None
    sample_rate: float = 1.0


@dataclass(frozen=True)
class PitOptions:
    strictly_before: bool = False
    availability: bool = False
    skew: SkewSpec = field(default_factory=SkewSpec)
    # Sort partitions (default: spark.sql.shuffle.partitions); sorts are fastest at up to ~1M rows each.
    partitions: int | None = None
    # Reduce feature rows per label interval before the shuffle when there are at most this many
    # label rows (0: never); see `_interval_reducer`.
    reduce_max_labels: int = JoinSpec.model_fields["reduce_max_labels"].default


@dataclass
class PitReport:
    """What the join did, for the manifest."""

    passes: list[dict[str, object]] = field(default_factory=list)


def _record_column(index: int) -> str:
    return f"_fs_r{index}"


def _record_struct(side: FeatureSide, availability: bool = False) -> Column:
    """The struct whose ordering is the winner rule: EventTime first, then the tie-break fields.

    Event-time mode: (is_deleted, write_time, api time). Availability mode: the earliest API call
    first (`first` = -api time in µs), as the online store keeps the first write of an EventTime.
    """
    order = [F.col(DELETED).alias("del"), F.col(WRITE_TIME).alias("wt"), F.col(API_TIME).alias("api")]
    if availability:
        order.insert(0, (-F.unix_micros(F.col(API_TIME))).alias("first"))
    return F.struct(
        F.col(EVENT_TIME).alias("et"), *order,
        *[F.col(name).alias(f"f{i}") for i, name in enumerate(side.features)],
    )


def _sides_by_keys(sides: Sequence[FeatureSide]) -> list[list[FeatureSide]]:
    """Groups that share their keys are joined in one pass (one shuffle, one sort)."""
    passes: dict[tuple[str, ...], list[FeatureSide]] = {}
    for side in sides:
        passes.setdefault(side.keys, []).append(side)
    return list(passes.values())


def as_of_join(labels: DataFrame, timestamp_column: str, sides: Sequence[FeatureSide],
               options: PitOptions, report: PitReport | None = None, label_count: int | None = None) -> DataFrame:
    """Every label row, unchanged and in no particular order, with each group's features as of its time.

    `label_count`: the labels' row count when the caller knows it (saves a count).
    """
    result = labels
    for group in _sides_by_keys(sides):
        # The label keys and times for the skew sample come from `labels` itself (persisted), not
        # from the previous pass's result, so no pass is computed twice.
        result = _one_pass(result, timestamp_column, group, options, report, source=labels, label_count=label_count)
    return result


def _one_pass(labels: DataFrame, timestamp_column: str, sides: list[FeatureSide], options: PitOptions,
              report: PitReport | None, *, source: DataFrame, label_count: int | None) -> DataFrame:
    keys = sides[0].keys
    key_cols = [f"_fs_k{i}" for i in range(len(keys))]
    label_side, feature_side = (0, 1) if options.strictly_before else (1, 0)
    label_columns = labels.columns
    # Names from a database may hold dots or spaces: quoted, so Spark never reads them as paths.
    label_struct = F.struct(*[labels[quoted(c)] for c in label_columns])
    label_type = labels.select(label_struct.alias(LABEL)).schema[LABEL].dataType
    key_types = [labels.schema[k].dataType for k in keys]

    records = [side.frame.select(_record_struct(side, options.availability).alias("r")) for side in sides]
    record_types = [r.schema["r"].dataType for r in records]
    record_names = [_record_column(i) for i in range(len(sides))]

    no_records = [F.lit(None).cast(t).alias(name) for t, name in zip(record_types, record_names, strict=True)]

    label_ts = labels[quoted(timestamp_column)].cast(T.TimestampType())
    label_rows = labels.select(
        *[labels[quoted(k)].alias(c) for k, c in zip(keys, key_cols, strict=True)],
        label_ts.alias(TS), F.lit(label_side).alias(SIDE),
        label_struct.alias(LABEL), *no_records,
    )
    union = label_rows
    label_times = source.select(*[source[quoted(k)].alias(c) for k, c in zip(keys, key_cols, strict=True)],
                                source[quoted(timestamp_column)].cast(T.TimestampType()).alias(TS))
    sources = [skew.SampleSource(label_times)]
    # The moment a row became eligible: its EventTime, or in availability mode its API call.
    sort_time = F.col(API_TIME) if options.availability else F.col(EVENT_TIME)
    key_and_time = [*[F.col(k).cast(t).alias(c) for k, t, c in zip(keys, key_types, key_cols, strict=True)],
                    sort_time.alias(TS)]
    reduce_with = _interval_reducer(labels.sparkSession, label_times, key_cols, options, label_count)
    for index, side in enumerate(sides):
        usable = F.col(EVENT_TIME).isNotNull() & _keys_not_null(side.keys)
        if options.availability:
            usable = usable & F.col(API_TIME).isNotNull()
        candidates = side.frame.where(usable).select(*key_and_time,
                                                     _record_struct(side, options.availability).alias("r"))
        if reduce_with is not None:
            candidates = reduce_with(candidates)
        feature_rows = candidates.select(
            *key_cols, TS, F.lit(feature_side).alias(SIDE), F.lit(None).cast(label_type).alias(LABEL),
            *[(F.col("r") if i == index else F.lit(None).cast(record_types[i])).alias(name)
              for i, name in enumerate(record_names)])
        union = union.unionByName(feature_rows)
        if reduce_with is not None:
            # Reduced, a key's feature rows number at most its label intervals per input task, so
            # the labels alone show which keys are hot; sampling feature files would cost a read.
            continue
        sampled = side.sample if side.sample is not None else side.frame
        sources.append(skew.SampleSource(sampled.where(usable).select(*key_and_time),
                                         side.sample_rate if side.sample is not None else 1.0))

    plan = skew.plan(sources, key_cols, options.skew)
    bucketed = skew.assign_buckets(union, plan, key_cols)
    if plan.hot_keys:
        is_feature = F.col(SIDE) == feature_side
        bucketed = bucketed.unionByName(skew.seed_rows(bucketed.where(is_feature), plan, key_cols, record_names,
                                                       label_type))
    partitions = _sort_partitions(bucketed, plan, options, reduced=reduce_with is not None)
    if report is not None:
        report.passes.append({"groups": [s.name for s in sides], "keys": list(keys), "sort_partitions": partitions,
                              "features_reduced_before_shuffle": reduce_with is not None, **plan.describe()})

    running = _running_winner(bucketed, key_cols, record_names, options, partitions,
                              bucketed_keys=bool(plan.hot_keys)).where(F.col(SIDE) == label_side)

    outputs: list[Column] = [F.col(LABEL).getField(c).alias(c) for c in label_columns]
    for side, name in zip(sides, record_names, strict=True):
        record = F.col(name)
        valid = record.isNotNull() & ~record["del"] & F.col(TS).isNotNull()
        if side.ttl_ms is not None:
            valid = valid & ((F.unix_micros(F.col(TS)) - F.unix_micros(record["et"])) <= F.lit(side.ttl_ms * 1000))
        if side.event_time_output:
            outputs.append(F.when(valid, record["et"]).alias(side.event_time_output))
        outputs.extend(F.when(valid, record[f"f{i}"]).alias(out) for i, out in enumerate(side.features))
    return running.select(*outputs)


# Groups a task holds before the reduction flushes them (besides its 64 MB bound on held rows).
_REDUCE_MAX_GROUPS = 1_000_000


def _interval_reducer(spark: SparkSession, label_times: DataFrame, key_cols: list[str],
                      options: PitOptions, label_count: int | None) -> Callable[[DataFrame], DataFrame] | None:
    """Map-side reduction of feature rows (keys, TS, record "r") to one per key and label interval.

    Two feature rows of a key whose sort times lie between the same two consecutive label times of
    that key are eligible for exactly the same labels, so only their max record can win; rows after
    a key's last label, or of keys without labels, can win nothing. Each task keeps the max per
    (key, interval) before the shuffle (`LabelIntervalReduce` in engine-jvm, with the
    labels' times per key broadcast), and the join after it is unchanged: max is associative.
    On the benchmark's 1M labels x 10M features it leaves 2.7M of the 10M feature rows to
    shuffle and sort (flushes at 64 MB of held rows per task keep a few duplicates).

    None (the plain path, same result) when turned off, when the labels are too many to
    broadcast, when a key is floating-point (SQL equality is not byte equality there), or
    without the jar.
    """
    if options.reduce_max_labels <= 0:
        return None
    if any(isinstance(label_times.schema[c].dataType, (T.FloatType, T.DoubleType)) for c in key_cols):
        return None
    from featurestream.engine.aggregation import EngineUnavailableError, ensure_engine

    try:
        ensure_engine(spark)  # the tiles jar: on the classpath, or added from the checkout's build
    except EngineUnavailableError:
        return None  # without the jar the plain path is exact too
    jvm: Any = spark.sparkContext._jvm
    usable = label_times.where(F.col(TS).isNotNull() & _keys_not_null(key_cols))
    if (label_count if label_count is not None else usable.count()) > options.reduce_max_labels:
        return None
    strictly_before = options.strictly_before
    keys = len(key_cols)

    def reduce(features: DataFrame) -> DataFrame:
        jdf = jvm.io.featurestream.asof.LabelIntervalReduce.reduce(
            features._jdf, usable._jdf, keys, strictly_before, _REDUCE_MAX_GROUPS)
        return DataFrame(jdf, spark)

    return reduce


def _tie_break(record_names: list[str], field_name: str) -> Column:
    """A version field of whichever group's record the row carries (null on label rows)."""
    fields = [F.col(name)[field_name] for name in record_names]
    return fields[0] if len(fields) == 1 else F.coalesce(*fields)


def _sort_partitions(rows: DataFrame, plan: skew.BucketPlan, options: PitOptions, *, reduced: bool) -> int:
    """The configured count, else enough that each sort holds ~ROWS_PER_SORT rows (at least the
    session's shuffle partitions): sorts much larger than the CPU caches were measured slower.

    Reduced before the shuffle, the rows sorted are the labels plus a few feature rows per label
    (2.7 on the benchmark's 1M x 10M), and the sample saw the labels only: REDUCED_ROWS_PER_LABEL
    per sampled row, at least the default parallelism. The session's count would make sorts of
    ~100k rows there; on the benchmark (idle, 3 rounds) 32 partitions took 8.8-9.0 s, 8 took
    8.2-9.3 s and 12 took 8.3-9.0 s.
    """
    if options.partitions:
        return options.partitions
    spark = rows.sparkSession
    session = int(spark.conf.get("spark.sql.shuffle.partitions") or "200")
    if plan.estimated_rows is None:
        return session
    if reduced:
        wanted = math.ceil(plan.estimated_rows * REDUCED_ROWS_PER_LABEL / ROWS_PER_SORT)
        return max(spark.sparkContext.defaultParallelism, wanted)
    return max(session, math.ceil(plan.estimated_rows / ROWS_PER_SORT))


def _running_winner(rows: DataFrame, key_cols: list[str], record_names: list[str], options: PitOptions,
                    partitions: int, *, bucketed_keys: bool) -> DataFrame:
    """Every row with, per group, the winning record among the rows sorted before it in its key.

    Event-time mode: rows sorted by (time, side, is_deleted, write_time, api time), so the winner
    is simply the last record seen (`last(ignorenulls)`, cheap). Availability mode: rows arrive in
    availability order, which is not EventTime order, so it is the running `max` of the struct.

    Sorting is most of the cost. Rows are hash-partitioned on one long (xxhash64 of key and
    bucket) that leads the window's sort order, so the sort compares longs, not strings; and a
    radix sort on (top hash bits, time in ms) runs first, leaving the window's exact sort nearly
    ordered input (TimSort's best case). Measured: about a third less CPU than the window alone.
    Rows are kept narrow (the shuffle moves all of them): no bucket column unless a key is hot,
    and the tie-break fields are read from the record after the shuffle.
    """
    partition_cols = [*key_cols, BUCKET] if bucketed_keys else list(key_cols)
    hashed = rows.withColumn(HASH, F.xxhash64(*partition_cols))
    presort = F.shiftleft(F.shiftright(F.col(HASH), 40), 40) + F.pmod(F.unix_millis(F.col(TS)), F.lit(1 << 40))
    # Hash partitioning on HASH alone satisfies the window's clustering on (HASH, keys, bucket).
    presorted = hashed.repartition(partitions, HASH).sortWithinPartitions(presort)
    order: list[Column] = [F.col(TS), F.col(SIDE)]
    winner: Callable[[str], Column] = F.max
    if not options.availability:
        order += [_tie_break(record_names, f) for f in ("del", "wt", "api")]
        winner = partial(F.last, ignorenulls=True)
    window = Window.partitionBy(HASH, *partition_cols).orderBy(*order).rowsBetween(
        Window.unboundedPreceding, Window.currentRow)
    return presorted.select(F.col(TS), F.col(SIDE), F.col(LABEL),
                            *[winner(name).over(window).alias(name) for name in record_names])


def quoted(name: str) -> str:
    """A column name as Spark must see it to take it literally (`a.b` is a struct path, `` `a.b` `` is not)."""
    return "`" + name.replace("`", "``") + "`"


def _keys_not_null(keys: Sequence[str]) -> Column:
    condition = F.lit(True)
    for key in keys:
        condition = condition & F.col(key).isNotNull()
    return condition
