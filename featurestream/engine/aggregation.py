"""Exact multi-window features per entity: the Python side of the JVM tile engine.

The definition (the README's "Feature semantics" says the same; the tests' oracles implement it
independently):

- Time is cut into tiles of `windows.tile`, aligned to the Unix epoch; tile k is [k·τ, (k+1)·τ).
- Clock: Spark's watermark W = (newest event time of earlier micro-batches) - allowed_lateness;
  stream time S = W + allowed_lateness.
- An event with event time e < W is late: it goes to the late sink (with W - e), never into a tile.
- With a dedupe step, an event whose key was accepted for the same entity with an event time at
  most `within` away is a duplicate and is dropped (counted).
- A record "as of" T holds, for a window of n tiles, the aggregate of the entity's accepted events
  in tiles floor(T/τ) - n + 1 … floor(T/τ): the current, partial tile and the n - 1 before it. A
  feature with no window (`last` only) covers everything accepted for the entity.
- T is the entity's newest accepted event time, or the latest decay boundary (k + n)·τ ≤ S of
  any of its tiles k and windows n when that is later (a tile leaving a window: decay, written
  even with no new events). A correction (late-but-accepted events that move neither) gets
  T = previous T + 1 ms, so EventTime strictly increases per entity and SageMaker's newest-wins
  rule takes it.
- Empty windows: count, sum and approx_count_distinct are 0; mean, min, max, stddev, last,
  approx_percentile and top_k are null (left out of the record). stddev_samp needs two values.
  `last` is the latest non-null value by event time, ties going to the greater value.
- Sketches: each tile, or for a window longer than `buckets` (24) tiles each bucket of
  c = ceil(n / buckets) epoch-aligned tiles, keeps a mergeable sketch per input; a record merges
  its window's tiles, or the bucket holding T and the floor(n / c) - 1 before it (a bucket leaving
  the window is a decay boundary). So a window keeps at most `buckets` sketches.
  approx_count_distinct counts distinct 64-bit hashes (xxhash64) of the values, exactly while the
  window holds at most `exact_up_to` of them, else by an HLL union; approx_percentile is a KLL
  sketch (exact up to `sketch_k` values); top_k a frequent-items sketch, ranked by count, ties to
  the smaller value. Error bounds: the README's "Sketch features".
- State: tiles leave state once W ≥ (k + longest window)·τ; an entity leaves state once no tile is
  in any window and W passed its last T (and its dedupe keys' bounds; with a window-less `last`,
  its last event + online-store TTL, or never without a TTL).

The engine is `io.featurestream.tiles.TileEngine` (engine-jvm): a map side that folds
each input partition's events into one partial state per entity (`PreAggregate`), then one
flatMapGroupsWithState keyed by entity with event-time timers that merges the partials. Late
events (e < W) and, in groups with a dedupe step, every event travel alone instead: the map side
learns W from the foreachBatch body (`use_batch_watermark`), and without it every event travels
alone, whole. Python only lays out the engine's input columns and reads its output.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from featurestream.config.feature_group import Aggregation, FeatureGroupSpec, is_integral, is_numeric
from featurestream.errors import FeatureStreamError
from featurestream.io.jars import ENGINE_JAR, module_jar
from featurestream.io.jvm import java_class

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import StructType

log = logging.getLogger(__name__)

PACKED_ROW_CLASS = "io.featurestream.tiles.PackedRow"
ENGINE_CLASS = "io.featurestream.tiles.TileEngine"
BATCH_HISTORY_CLASS = "io.featurestream.tiles.HistoryPass"

# Output columns of the engine besides the features.
KIND, KEY, AS_OF = "_kind", "_key", "_as_of"
AGGREGATED, DUPLICATES, FOLDED = "_aggregated", "_duplicates", "_folded"
EVENT, LATE_BY_MS, WATERMARK = "_event", "_late_by_ms", "_watermark"
RECORD, LATE, COUNTERS = 0, 1, 2
# The batch pass's output only (`run_history_pass`): an entity's encoded state after a chunk.
STATE, STATE_BYTES = 3, "_state"
# Records bound for the DLQ ride the engine as late events (see `engine_input`).
DLQ_COLUMN = "_dlq"
DLQ_KEY_PREFIX = "\u0000dlq:"
_OLDEST_MS = -(2**63)
# Spark's key for a column's watermark delay; see `_watermark_guard`.
_WATERMARK_DELAY_KEY = "spark.watermarkDelayMs"


class EngineUnavailableError(FeatureStreamError):
    """The tile engine's jar is neither on Spark's classpath nor built in the checkout."""


@dataclass(frozen=True)
class EnginePlan:
    """Which input column feeds which engine slot, and the JSON the JVM side reads."""

    numeric: tuple[str, ...]
    hashed: tuple[str, ...]
    last: tuple[str, ...]
    features: tuple[dict[str, Any], ...]
    config: str
    quantile: tuple[str, ...] = ()
    top_k: tuple[str, ...] = ()


def feature_columns(spec: FeatureGroupSpec) -> list[str]:
    return [name for feature in spec.features for name, _ in feature.output_names()]


class _Slots:
    """Input slots of one kind: one per (column, sketch parameters), in order of first use."""

    def __init__(self) -> None:
        self.keys: list[tuple[str, tuple[tuple[str, int], ...]]] = []

    def index(self, column: str, parameters: dict[str, int]) -> int:
        key = (column, tuple(sorted(parameters.items())))
        if key not in self.keys:
            self.keys.append(key)
        return self.keys.index(key)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(column for column, _ in self.keys)

    @property
    def parameters(self) -> list[dict[str, int]]:
        return [dict(parameters) for _, parameters in self.keys]


def plan(spec: FeatureGroupSpec, *, history: bool = False) -> EnginePlan:
    """The engine's slots and config; `history`: a record at every event and decay boundary (backfill)."""
    kinds = {kind: _Slots() for kind in ("numeric", "hashed", "last", "quantile", "top_k")}
    slot_kind = {Aggregation.APPROX_COUNT_DISTINCT: "hashed", Aggregation.LAST: "last",
                 Aggregation.APPROX_PERCENTILE: "quantile", Aggregation.TOP_K: "top_k"}
    features: list[dict[str, Any]] = []
    tile = spec.windows.tile_ms
    for feature in spec.features:
        kind = "numeric" if feature.agg.numeric else slot_kind.get(feature.agg)
        slot = -1
        if kind is not None and feature.column is not None:
            slot = kinds[kind].index(feature.column, feature.sketch_parameters)
        for name, window_ms, part in feature.outputs():
            agg = "top_k_share" if part.get("share") else feature.agg.value
            features.append({"name": name, "agg": agg, "tiles": window_ms // tile, "slot": slot,
                             "grain": feature.grain(window_ms // tile),
                             **{k: v for k, v in part.items() if k != "share"}})
    dedupe = spec.dedupe
    config = json.dumps({
        "tile_ms": tile,
        "lateness_ms": spec.windows.allowed_lateness_ms,
        "ttl_ms": spec.online_store.ttl_ms,
        "dedupe_within_ms": dedupe.within_ms if dedupe else -1,
        "numeric_slots": len(kinds["numeric"].keys), "hash_slots": len(kinds["hashed"].keys),
        "last_slots": len(kinds["last"].keys), "quantile_slots": len(kinds["quantile"].keys),
        "top_k_slots": len(kinds["top_k"].keys),
        "distinct": kinds["hashed"].parameters, "quantile": kinds["quantile"].parameters,
        "top_k": kinds["top_k"].parameters,
        "features": features,
        "history": history,
    })
    return EnginePlan(kinds["numeric"].columns, kinds["hashed"].columns, kinds["last"].columns, tuple(features),
                      config, kinds["quantile"].columns, kinds["top_k"].columns)


def _watermark_guard(lateness_ms: int) -> Column:
    """A null timestamp column that carries the watermark mark.

    Spark requires a watermarked column in the input of an event-time-timeout state function and
    silently drops rows older than the watermark when that column is the event time. The engine
    must see late events to send them to the late sink, so the event time goes in as a plain
    number (`_ts`) and this always-null column carries the mark: nothing is filtered.
    """
    from pyspark.sql import functions as F

    return F.lit(None).cast("timestamp").alias("_wm", metadata={_WATERMARK_DELAY_KEY: lateness_ms})


def _last_value(column: str, spark_type: str) -> Column:
    """`last` keeps a value's kind: integers as bigint, other numbers as double."""
    from pyspark.sql import functions as F

    value = F.col(f"`{column}`")
    if is_integral(spark_type):
        return value.cast("bigint")
    if is_numeric(spark_type):
        return value.cast("double")
    return value


def pack_event(events: DataFrame) -> Column:
    """The `_event` column: the whole event (every column of `events`), which the engine passes on
    for a late event or a record bound for the DLQ, as one opaque binary value (`PackedRow`: the
    bytes of the struct's UnsafeRow, exact for every Spark type). As a struct, every nested field
    was spelled out by each of the engine's four Row encoders (both sides of its map side and of
    its state operator): a large plan, which Spark optimises, describes and generates code for in
    every micro-batch. `unpack_event` with `event_type(events)` reads it back."""
    from pyspark.sql import Column as SparkColumn
    from pyspark.sql import functions as F

    spark = events.sparkSession
    ensure_engine(spark)
    struct = F.struct(*[F.col(f"`{c}`") for c in events.columns])
    return SparkColumn(java_class(spark, PACKED_ROW_CLASS).pack(struct._jc))


def event_type(events: DataFrame) -> StructType:
    """The type `_event` packs for `events` (the engine's events, after the stateless transforms):
    the struct of their columns, which `late_events` and `dlq_events` unpack it as."""
    return events.schema


def unpack_event(spark: SparkSession, packed: Column, packed_type: StructType) -> Column:
    """`_event` (see `pack_event`) back as the struct of `packed_type` (`event_type` of the packed events)."""
    from pyspark.sql import Column as SparkColumn

    return SparkColumn(java_class(spark, PACKED_ROW_CLASS).unpack(packed._jc, packed_type.json()))


def engine_input(events: DataFrame, spec: FeatureGroupSpec, engine: EnginePlan) -> DataFrame:
    """Events (after the stateless transforms) → the engine's input layout, with the watermark set."""
    from pyspark.sql import functions as F

    event_time = spec.event_time.field
    types = dict(events.dtypes)
    lateness = spec.windows.allowed_lateness_ms
    watermarked = events.withWatermark(event_time, f"{lateness} milliseconds")
    dedupe = spec.dedupe
    dedupe_key = F.lit(None).cast("bigint")
    if dedupe is not None:
        key = F.col(f"`{dedupe.key}`")
        dedupe_key = F.when(key.isNotNull(), F.xxhash64(key))
    key = F.col(f"`{spec.entity.key}`").cast("string")
    ts = F.unix_millis(F.col(f"`{event_time}`"))
    if DLQ_COLUMN in events.columns:
        # A record bound for the DLQ (no event time, see `parsing.routed_events`) is older than any
        # watermark: the engine passes it on as it passes a late event, whole and untouched, under
        # a reserved key (16 of them, so a flood of bad records spreads over tasks).
        bound = F.col(DLQ_COLUMN).isNotNull()
        spread = F.abs(F.xxhash64(F.col(f"{DLQ_COLUMN}.offset"))) % 16
        reserved = F.concat(F.lit(DLQ_KEY_PREFIX), spread.cast("string"))
        key = F.when(bound, reserved).otherwise(key)
        ts = F.when(bound, F.lit(_OLDEST_MS)).otherwise(ts)
    columns = [
        key.alias(KEY),
        ts.alias("_ts"),
        _watermark_guard(lateness),
        dedupe_key.alias("_dk"),
        *[F.col(f"`{c}`").cast("double").alias(f"_n{i}") for i, c in enumerate(engine.numeric)],
        *[F.when(F.col(f"`{c}`").isNotNull(), F.xxhash64(F.col(f"`{c}`"))).alias(f"_h{i}")
          for i, c in enumerate(engine.hashed)],
        *[_last_value(c, types[c]).alias(f"_l{i}") for i, c in enumerate(engine.last)],
        *[F.col(f"`{c}`").cast("double").alias(f"_q{i}") for i, c in enumerate(engine.quantile)],
        *[F.col(f"`{c}`").cast("string").alias(f"_t{i}") for i, c in enumerate(engine.top_k)],
        pack_event(events).alias(EVENT),
    ]
    return watermarked.select(*columns)


def ensure_engine(spark: SparkSession) -> None:
    """Make the engine's classes loadable from this thread.

    On a cluster the jar comes with `--jars`; locally, when the session started without it, the
    checkout's build is added with Spark's own `ADD JAR` (executors fetch it, the driver's loader
    gets it).
    """
    jvm: Any = spark.sparkContext._jvm
    loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
    try:
        jvm.java.lang.Class.forName(ENGINE_CLASS, False, loader)
        return
    except Exception:  # py4j wraps ClassNotFoundException in a generic Py4JError
        log.debug("tile engine not on the classpath yet")
    jar = module_jar(ENGINE_JAR)
    if not jar.is_file():
        raise EngineUnavailableError(
            f"the tile engine jar {jar} is missing: build it with "
            "`mvn -q -f engine-jvm/pom.xml package` (make does this), or pass it with --jars"
        )
    spark.sql(f"ADD JAR '{jar}'")


def batch_time_ms(spark: SparkSession) -> Column | None:
    """The micro-batch's timestamp (epoch ms) as a column of the engine's jar (`BatchTime`), None without the jar.

    Inside the foreachBatch body, the time Spark recorded for the batch in the offset log (set by
    `use_batch_watermark`): a replayed batch gets the same value. Unlike `current_timestamp()`,
    which Spark writes into each batch's generated code as a new literal (new classes to compile
    every micro-batch), the code stays the same. Elsewhere (a batch job) the task's clock.
    """
    from pyspark.sql import Column as SparkColumn

    try:
        ensure_engine(spark)
    except EngineUnavailableError:
        return None
    return SparkColumn(java_class(spark, "io.featurestream.tiles.BatchTime").column())


def batch_timestamp(spark: SparkSession) -> Column:
    """`batch_time_ms` as a timestamp (the DLQ's `dlq_time`); `current_timestamp()` without the jar."""
    from pyspark.sql import functions as F

    millis = batch_time_ms(spark)
    return F.current_timestamp() if millis is None else F.timestamp_millis(millis)


def run_engine(events: DataFrame, spec: FeatureGroupSpec, *, history: bool = False, append: bool = False) -> DataFrame:
    """Streaming events → the engine's output: records, late events and counters (see KIND).

    `history` (the backfill): a record at every accepted event time and every decay boundary, each
    with the values as of its time, instead of one record per entity and micro-batch.
    """
    from pyspark.sql import DataFrame as SparkDataFrame

    spark = events.sparkSession
    ensure_engine(spark)
    engine = plan(spec, history=history)
    # `append`: the state operator in append mode, for a query in append mode (several groups in one query).
    jdf = java_class(spark, ENGINE_CLASS).apply(engine_input(events, spec, engine)._jdf, engine.config, append)
    return SparkDataFrame(jdf, spark)


def run_engine_groups(inputs: Sequence[tuple[DataFrame, FeatureGroupSpec]]) -> DataFrame:
    """Several groups' streaming events (after each group's transforms) → one state operator's output.

    One shuffle and one state operator for all the groups (`TileEngine.applyGroups`), keyed by
    (group, entity): rows of `_group` (the index in `inputs`) and `_o0` … `_o<n-1>`, each group's
    output (as `run_engine` gives it, append mode) in its own struct, the others null.
    """
    from pyspark.sql import DataFrame as SparkDataFrame

    spark = inputs[0][0].sparkSession
    ensure_engine(spark)
    frames, configs = java_class(spark, "java.util.ArrayList")(), java_class(spark, "java.util.ArrayList")()
    for events, spec in inputs:
        engine = plan(spec)
        frames.add(engine_input(events, spec, engine)._jdf)
        configs.add(engine.config)
    return SparkDataFrame(java_class(spark, ENGINE_CLASS).applyGroups(frames, configs), spark)


def history_input(events: DataFrame, spec: FeatureGroupSpec, *, watermark: int) -> DataFrame:
    """A batch of events (after the stateless transforms) in the engine's input layout for
    `run_history_pass`; only an event below `watermark` (late) keeps its whole event (`_event`, packed)."""
    from pyspark.sql import functions as F

    laid_out = engine_input(events, spec, plan(spec, history=True))
    return laid_out.withColumn(EVENT, F.when(F.col("_ts") < chunk_value(events.sparkSession, watermark), F.col(EVENT)))


def chunk_value(spark: SparkSession, value: int) -> Column:
    """A backfill chunk's own number (watermark, write time) as a column that keeps Spark's generated
    code the same from chunk to chunk (a literal is compiled into it; see `HistoryPass.chunkValue`)."""
    from pyspark.sql import Column as SparkColumn

    ensure_engine(spark)
    return SparkColumn(java_class(spark, BATCH_HISTORY_CLASS).chunkValue(value))


def run_history_pass(laid_out: DataFrame, state: DataFrame, spec: FeatureGroupSpec, *, watermark: int,
                     watermark_after: int) -> DataFrame:
    """One backfill chunk's events (`history_input`) and the entities' state after the previous
    chunk → the engine's output in history mode plus STATE rows (`_key`, `_state`) for the next.

    The same engine classes as the stream's query (`TileFunction`'s history steps), without a
    streaming query: `watermark` is what the stream's micro-batch of these events would have
    (newest earlier event - lateness), `watermark_after` what its timer batch after them would
    have; see `HistoryPass` in engine-jvm.
    """
    from pyspark.sql import DataFrame as SparkDataFrame

    spark = laid_out.sparkSession
    ensure_engine(spark)
    jdf = java_class(spark, BATCH_HISTORY_CLASS).apply(laid_out._jdf, state._jdf, plan(spec, history=True).config,
                                                      watermark, watermark_after)
    return SparkDataFrame(jdf, spark)


def state_rows(output: DataFrame) -> DataFrame:
    """The STATE rows of a batch pass's output: what the next chunk starts from."""
    from pyspark.sql import functions as F

    return output.where(F.col(KIND) == STATE).select(KEY, STATE_BYTES)


def use_batch_watermark(spark: SparkSession, checkpoint: str, batch_id: int) -> int:
    """Let the engine's map side fold events before the shuffle in the jobs of this micro-batch.

    Call it in the foreachBatch body, before any action on the batch: it reads the batch's watermark
    from the query's offset log and sets it as a local property of the query's thread, which the
    map side's tasks read (see `PreAggregate` in engine-jvm). Returns the watermark (-1
    when the log has no such batch: then events travel one by one, as without this call).
    """
    return int(java_class(spark, ENGINE_CLASS).useBatchWatermark(spark._jsparkSession, checkpoint, batch_id))


def clear_batch_watermark(spark: SparkSession) -> None:
    java_class(spark, ENGINE_CLASS).clearBatchWatermark(spark._jsparkSession)


def records(output: DataFrame, spec: FeatureGroupSpec, selection: RecordSelection | None = None) -> DataFrame:
    """One full record per entity: the key (its declared type), EventTime (timestamp), every feature.

    `selection`: `record_selection(spec)` made once, for a caller that selects every micro-batch.
    """
    where, columns = selection or record_selection(spec)
    return output.where(where).select(*columns)


RecordSelection = tuple["Column", list["Column"]]


def record_selection(spec: FeatureGroupSpec, *, within: str | None = None) -> RecordSelection:
    """The condition and the columns of `records` (unresolved: they serve any micro-batch);
    `within`: the output's columns are the fields of that struct column."""
    from pyspark.sql import functions as F

    prefix = f"`{within}`." if within else ""
    key_type = "string" if spec.entity.type == "string" else "bigint"
    return F.col(f"{prefix}{KIND}") == RECORD, [
        F.col(f"{prefix}{KEY}").cast(key_type).alias(spec.entity.key),
        F.col(f"{prefix}{AS_OF}").alias(spec.event_time.field),
        *[F.col(f"{prefix}`{name}`").alias(name) for name in feature_columns(spec)],
    ]


def late_events(output: DataFrame, packed_type: StructType) -> DataFrame:
    """The late sink's rows: the event as the engine got it (`_event` unpacked as `packed_type`,
    see `pack_event`), how late it was and the watermark."""
    from pyspark.sql import functions as F

    late = output.where(F.col(KIND) == LATE)
    event = unpack_event(output.sparkSession, F.col(EVENT), packed_type)
    names = packed_type.names
    if DLQ_COLUMN in names:
        late = late.where(event[DLQ_COLUMN].isNull())
    return late.select(
        *[event[name].alias(name) for name in names if name != DLQ_COLUMN],
        F.col(LATE_BY_MS).alias("late_by_ms"), F.col(WATERMARK).alias("watermark"),
    )


def dlq_events(output: DataFrame, packed_type: StructType) -> DataFrame:
    """The DLQ's rows among the engine's output (records that could not be used, see `engine_input`):
    the DLQ row as it went in (`_event` unpacked as `packed_type`, see `pack_event`), and
    `dlq_time`, the micro-batch's timestamp from the offset log (`batch_timestamp`)."""
    from pyspark.sql import functions as F

    row = unpack_event(output.sparkSession, F.col(EVENT), packed_type)[DLQ_COLUMN]
    return (output.where((F.col(KIND) == LATE) & row.isNotNull())
            .select(row.alias(DLQ_COLUMN)).select(f"{DLQ_COLUMN}.*", batch_timestamp(output.sparkSession)
                                                  .alias("dlq_time")))
