"""Transform steps (filter, cast, derive, fill nulls, rename, drop, dedupe) as DataFrame → DataFrame.

Each builder returns a pure function for `df.transform(...)`, the same on batch and streaming
frames, so a step can be tested on a three-row DataFrame. The one exception is `dedupe` on a
stream: it needs state, so the streaming job hands it to the tile engine (which keeps the keys per
entity); `dedupe_rows` here is its batch form with the same rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from featurestream.config.feature_group import (
    CastStep,
    DedupeStep,
    DeriveStep,
    DropStep,
    FeatureGroupSpec,
    FillNullsStep,
    FilterStep,
    RenameStep,
    is_numeric,
)
from featurestream.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

Transform = Callable[["DataFrame"], "DataFrame"]


def filter_rows(condition: str) -> Transform:
    from pyspark.sql import functions as F

    return lambda df: df.where(F.expr(condition))


def cast_columns(types: dict[str, str]) -> Transform:
    from pyspark.sql import functions as F

    return lambda df: df.withColumns({name: F.col(f"`{name}`").cast(t) for name, t in types.items()})


def derive_columns(expressions: dict[str, str]) -> Transform:
    """Add (or replace) columns from Spark SQL expressions, in order: later ones may use earlier ones."""
    from pyspark.sql import functions as F

    def apply(df: DataFrame) -> DataFrame:
        for name, expression in expressions.items():
            df = df.withColumn(name, F.expr(expression))
        return df

    return apply


def fill_nulls(values: dict[str, Any]) -> Transform:
    """Replace nulls; the fill value is cast to the column's type so the type never changes."""
    from pyspark.sql import functions as F

    def apply(df: DataFrame) -> DataFrame:
        types = dict(df.dtypes)
        return df.withColumns({
            name: F.coalesce(F.col(f"`{name}`"), F.lit(value).cast(types[name])) for name, value in values.items()
        })

    return apply


def rename_columns(mapping: dict[str, str]) -> Transform:
    return lambda df: df.withColumnsRenamed(mapping)


def drop_columns(columns: Sequence[str]) -> Transform:
    return lambda df: df.drop(*columns)


def dedupe_rows(key: str, within: timedelta, event_time: str, entity: str) -> Transform:
    """Batch form of the dedupe step: per entity and key, in event-time order, an event within
    `within` of the last kept one is dropped (the streaming engine applies the same rule in
    arrival order, which for re-delivered copies gives the same result)."""
    within_s = within.total_seconds()

    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.sort_values(event_time, kind="stable")
        kept, last = [], None
        for moment in frame[event_time]:
            fresh = last is None or (moment - last).total_seconds() > within_s
            kept.append(fresh)
            if fresh:
                last = moment
        return frame[kept]

    def apply(df: DataFrame) -> DataFrame:
        deduped = df.where(df[key].isNotNull()).groupBy(entity, key).applyInPandas(keep, schema=df.schema)
        return deduped.unionByName(df.where(df[key].isNull()))

    return apply


def step_transform(step: object, spec: FeatureGroupSpec) -> Transform:
    if isinstance(step, FilterStep):
        return filter_rows(step.filter)
    if isinstance(step, CastStep):
        return cast_columns(step.cast)
    if isinstance(step, DeriveStep):
        return derive_columns(step.derive)
    if isinstance(step, FillNullsStep):
        return fill_nulls(step.fill_nulls)
    if isinstance(step, RenameStep):
        return rename_columns(step.rename)
    if isinstance(step, DropStep):
        return drop_columns(step.drop)
    if isinstance(step, DedupeStep):
        return dedupe_rows(step.dedupe.key, timedelta(milliseconds=step.dedupe.within_ms), spec.event_time.field,
                           spec.entity.key)
    raise TypeError(f"unknown transform step {step!r}")


def stateless_steps(spec: FeatureGroupSpec) -> list[object]:
    """The steps a stream applies before the engine: all but a trailing dedupe."""
    return [step for step in spec.transforms if not isinstance(step, DedupeStep)]


FILTERED_OBSERVATION = "featurestream_filtered"
_KEEP = "_fs_keep"
_REFUSED = "_fs_too_large"


def filtered_observation(group: str | None = None) -> str:
    """The observation's name: one per group when several groups share a query (names must differ)."""
    return FILTERED_OBSERVATION if group is None else f"{FILTERED_OBSERVATION}:{group}"


def apply_stream_transforms(df: DataFrame, spec: FeatureGroupSpec,
                            observation: str = FILTERED_OBSERVATION) -> DataFrame:
    """The stateless steps for a stream, counting what the filters drop.

    Filters become a keep-flag applied once at the end, so one observation
    (`featurestream_filtered`, column `rows`, in each micro-batch's progress) counts every event
    a filter step removed; the other steps see the same rows they would otherwise, plus the
    ones a filter is about to drop (their results are discarded).
    """
    from pyspark.sql import functions as F

    from featurestream.engine.parsing import DLQ

    df = df.withColumn(_KEEP, F.lit(True))
    # A record on its way to the DLQ (see `parsing.routed_events`) passes every filter, uncounted.
    on_its_way_to_dlq = F.col(DLQ).isNotNull() if DLQ in df.columns else F.lit(False)
    for step in stateless_steps(spec):
        if isinstance(step, FilterStep):
            passes = F.coalesce(F.expr(step.filter), F.lit(False)) | on_its_way_to_dlq
            df = df.withColumn(_KEEP, F.col(_KEEP) & passes)
        else:
            df = df.transform(step_transform(step, spec))
    df = refuse_oversized_derived(df, spec)
    counts = [F.count_if(~F.col(_KEEP)).alias("rows")]
    if _REFUSED in df.columns:  # filtered: what a filter step removed, not a refused event
        counts = [F.count_if(~F.col(_KEEP) & ~F.col(_REFUSED)).alias("rows"),
                  F.count_if(F.col(_REFUSED)).alias("too_large")]
    return df.observe(observation, *counts).where(F.col(_KEEP)).drop(_KEEP, _REFUSED)


def refuse_oversized_derived(df: DataFrame, spec: FeatureGroupSpec) -> DataFrame:
    """Hold the string columns the transforms made for a string feature to their limit.

    The parser holds source strings to `FeatureGroupSpec.string_limits`; a `derive` (say a
    concat) can still make a value too large for the online record, and kept by a `last` it would
    have every later record of its entity refused by the store. Such an event goes to the DLQ
    like one the parser refuses (`value too large: <column> is over <n> bytes (derived)`, its
    payload and coordinates from `parsing.ORIGIN`, its event time null so the engine passes it
    on); a batch source without a DLQ (the backfill) leaves it out, as the stream does. Such
    events are flagged in the `_REFUSED` column (absent when the group has no such column).
    """
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    from featurestream.engine.parsing import DLQ, ORIGIN, SOURCE_TIME

    limits = {column: limit for column, limit in spec.derived_string_limits().items()
              if column in df.columns and isinstance(df.schema[column].dataType, StringType)}
    if not limits:
        return df.drop(ORIGIN) if ORIGIN in df.columns else df
    reason = F.coalesce(*[F.when(F.octet_length(F.col(f"`{column}`")) > F.lit(limit),
                                 F.lit(f"value too large: {column} is over {limit} bytes (derived)"))
                          for column, limit in limits.items()])
    usable = F.col(DLQ).isNull() if DLQ in df.columns else F.lit(True)
    df = df.withColumn(_REFUSED, F.col(_KEEP) & usable & reason.isNotNull())
    refused = F.col(_REFUSED)
    if DLQ not in df.columns or ORIGIN not in df.columns:
        return df.withColumn(_KEEP, F.col(_KEEP) & ~refused)
    origin = F.col(ORIGIN)
    dlq_row = F.struct(origin["payload"].alias("payload"), origin["payload_encoding"].alias("payload_encoding"),
                       reason.alias("reason"), origin["topic"].alias("topic"), origin["partition"].alias("partition"),
                       origin["offset"].alias("offset"), origin[SOURCE_TIME].alias(SOURCE_TIME))
    event_time = F.col(f"`{spec.event_time.field}`")
    return df.withColumns({DLQ: F.when(refused, dlq_row).otherwise(F.col(DLQ)),
                           spec.event_time.field: F.when(refused, F.lit(None)).otherwise(event_time)}).drop(ORIGIN)


def check_with_spark(spec: FeatureGroupSpec, spark: SparkSession, source: str | None = None) -> dict[str, str]:
    """Let Spark parse and resolve every expression on an empty frame; return column → Spark type.

    Runs before any query starts: a SQL expression Spark cannot parse or resolve, or a derived
    column of the wrong type for its aggregation, is a ConfigError naming the step or feature.
    """
    from pyspark.errors import PySparkException
    from pyspark.sql.types import StructType, _parse_datatype_string

    file = source or f"conf/feature_groups/{spec.name}.yaml"
    schema = _parse_datatype_string(spec.source.ddl())
    assert isinstance(schema, StructType)
    df = spark.createDataFrame([], schema)
    for index, step in enumerate(stateless_steps(spec)):
        try:
            df = df.transform(step_transform(step, spec))
            df.schema  # noqa: B018 - forces analysis of this step
        except PySparkException as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(file, f"transforms[{index}]", f"Spark rejects this step: {reason}") from None
    types = {field.name: field.dataType.simpleString() for field in df.schema.fields}
    for index, feature in enumerate(spec.features):
        if feature.column is None or not feature.agg.needs_number:
            continue
        spark_type = types.get(feature.column, "")
        if not is_numeric(spark_type):
            raise ConfigError(file, f"features[{index}].column",
                              f"{feature.column!r} is {spark_type}, not a number: {feature.agg.value} needs a "
                              "numeric column")
    return types
