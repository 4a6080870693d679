"""Raw source records → typed events, with a reason for every record that can't be used.

One pass: `from_json` in PERMISSIVE mode with a corrupt-record column (or `from_avro` in
PERMISSIVE mode, which yields null for a record it cannot decode), then the checks that make an
event usable. Good and bad rows are two filters of the same frame so nothing falls between them:
in = valid + invalid. The reasons, in the order they are checked (docs/operations.md, "Malformed
input"):

- `empty message`: no value at all;
- `invalid UTF-8 ...` (JSON only): the bytes are not UTF-8. Spark would decode them with
  replacement characters, so such a payload is kept in the DLQ as base64 (`payload_encoding`);
- `malformed JSON or a field of the wrong type` / `malformed Avro (or every field null)`;
- `missing entity key <key>`, `missing or unparsable event time <field>`;
- `not a finite number: <column> is NaN or Infinity`: JSON has no such numbers, but Jackson
  accepts them (and their quoted spellings); one would poison every sum and mean of its window;
- `value too large: <column> is over <n> bytes`: a string value longer (in UTF-8 bytes) than its
  limit (`FeatureGroupSpec.string_limits`): kept by a `last`, it would make every later record of
  its entity too big for the online store, refused there for good;
- `event time <field> too far in the future: more than <max_future> after the record's
  timestamp`: the record's own timestamp (Kafka's record time, Kinesis' arrival time; the
  micro-batch's processing time when the source has none) is the reference, so the verdict is the
  same in the features query and the DLQ query, and again on a replay or a reprocessing.

Far-past events are not refused here: the engine sends events older than its watermark to the
late sink (a backfill into a fresh checkpoint is legitimate).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, FloatType, StringType, StructField, StructType, _parse_datatype_string

from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.durations import parse_duration_ms
from featurestream.io.jvm import java_class

CORRUPT = "_corrupt_record"
REASON = "_dlq_reason"
RAW = "_raw"
ENCODING = "_payload_encoding"
BAD_UTF8 = "_bad_utf8"
EMPTY = "_empty"
SOURCE_TIME = "kafka_timestamp"
# The DLQ row of an invalid record, carried beside the event columns through the engine (null
# for a usable event); see `routed_events`.
DLQ = "_dlq"
# Where a usable event came from (the DLQ row's fields but the reason), kept through the transforms
# only for a group whose transforms make a string feature's column: the transforms may yet refuse
# the event (`engine.transforms.refuse_oversized_derived`).
ORIGIN = "_origin"


def event_schema(spec: FeatureGroupSpec) -> StructType:
    parsed = _parse_datatype_string(spec.source.ddl())
    assert isinstance(parsed, StructType)
    return StructType([*parsed.fields, StructField(CORRUPT, StringType(), True)])


def _event_time(spec: FeatureGroupSpec, column: Column) -> Column:
    fmt = spec.event_time.format
    if fmt == "epoch_seconds":
        return F.timestamp_seconds(column.cast("double"))
    if fmt == "epoch_millis":
        return F.timestamp_millis(column.cast("long"))
    return column.cast("timestamp")


def event_time_column(spec: FeatureGroupSpec, column: Column) -> Column:
    """The event time as a timestamp, by the group's `event_time.format` (the backfill reads files with it)."""
    return _event_time(spec, column)


def usable(spec: FeatureGroupSpec, frame: DataFrame) -> Column:
    """True for a typed event the engine may take: entity key and event time present, numbers finite.

    The checks of `parse_events` that apply to an event without a source record (no payload, no
    record timestamp for `max_future`): the backfill holds its sources to them.
    """
    ok = F.col(f"`{spec.entity.key}`").isNotNull() & F.col(f"`{spec.event_time.field}`").isNotNull()
    for check, _ in _non_finite(spec, frame):
        ok = ok & ~check
    return ok


def _has_engine(spark: SparkSession) -> bool:
    """Whether the tile engine's jar is loaded (the parse step's JVM columns come from it)."""
    from featurestream.engine.aggregation import EngineUnavailableError, ensure_engine

    try:
        ensure_engine(spark)
    except EngineUnavailableError:
        return False
    return True


def _invalid_utf8(spark: SparkSession) -> tuple[Callable[[Column], Column], bool]:
    """(`value -> true when the bytes are not UTF-8` (false for null), whether it is a barrier).

    The verdict of Spark's round trip `encode(decode(value, 'UTF-8'), 'UTF-8') != value` (Java's
    decoder replaces what is not UTF-8, so the round trip differs exactly when the bytes are bad),
    from the tile engine's jar: one pass over an all-ASCII payload instead of two transcodings,
    two copies and a comparison per record. The jar's column is marked nondeterministic, which
    makes the projection holding it an optimizer barrier (see `parse_events`). Without the jar,
    the round trip itself, and no barrier.
    """
    if not _has_engine(spark):
        return (lambda value: F.coalesce(F.encode(F.decode(value, "UTF-8"), "UTF-8") != value, F.lit(False))), False
    barrier = java_class(spark, "io.featurestream.tiles.InvalidUtf8").barrier
    return (lambda value: Column(barrier(value._jc))), True


def _decode_json(spec: FeatureGroupSpec, spark: SparkSession) -> tuple[Column, Column, bool]:
    """(bytes-are-not-UTF-8 flag, parsed struct, whether the flag is an optimizer barrier).

    With the engine's jar the struct comes from its `FromJson`: Spark's `from_json` with the same
    parser, options and results, minus two per-record costs of Spark 3.5 (an 8 KB buffer for the
    reader it hands Jackson, and its general timestamp parser, a regex included, for the common
    `yyyy-MM-ddTHH:mm:ss[.ffffff]Z`). `tests/unit/test_parsing.py` compares both on tricky payloads.
    """
    check, barrier = _invalid_utf8(spark)
    parsed = F.from_json(F.col("value").cast("string"), event_schema(spec),
                         {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT})
    if barrier:
        parsed = Column(java_class(spark, "io.featurestream.tiles.FromJson").wrap(parsed._jc))
    return check(F.col("value")), parsed, barrier


def _decode_avro(spec: FeatureGroupSpec, spark: SparkSession) -> tuple[Column, Column, bool]:
    """Avro binary with the configured writer schema; `confluent` framing skips the 5-byte header."""
    from pyspark.sql.avro.functions import from_avro

    value = F.col("value")
    if spec.source.avro_framing == "confluent":
        value = F.expr("substring(value, 6)")
    return F.lit(False), from_avro(value, spec.source.avro_schema_json(), {"mode": "PERMISSIVE"}), False


def _payload(avro: bool) -> tuple[Column, Column]:
    """(payload for the DLQ, its encoding): the text, or base64 for Avro and for bytes that are not UTF-8."""
    value = F.col("value")
    if avro:
        return F.base64(value), F.lit("base64")
    bad = F.col(BAD_UTF8)
    return F.when(bad, F.base64(value)).otherwise(value.cast("string")), \
        F.when(bad, F.lit("base64")).otherwise(F.lit("utf-8"))


def _non_finite(spec: FeatureGroupSpec, frame: DataFrame) -> list[tuple[Column, str]]:
    """(check, reason) for every float/double column of the source schema."""
    checks = []
    for column in spec.source.schema_:
        if isinstance(frame.schema[column].dataType, DoubleType | FloatType):
            value = F.col(column)
            bad = F.isnan(value) | (value == F.lit(float("inf"))) | (value == F.lit(float("-inf")))
            checks.append((F.coalesce(bad, F.lit(False)), f"not a finite number: {column} is NaN or Infinity"))
    return checks


def _too_large(spec: FeatureGroupSpec) -> list[tuple[Column, str]]:
    """(check, reason) for every string column of the source schema: its UTF-8 size against its limit."""
    return [(F.coalesce(F.octet_length(F.col(column)) > F.lit(limit), F.lit(False)),
             f"value too large: {column} is over {limit} bytes (source.max_string_bytes)")
            for column, limit in spec.string_limits().items()]


def _processing_time_s(spark: SparkSession) -> Column:
    """The micro-batch's timestamp in seconds: from the tile engine's jar, a column whose generated
    code does not change per batch (`current_timestamp()` is a new literal in every batch's code,
    so each batch compiled new classes); without the jar, `current_timestamp()`."""
    from featurestream.engine.aggregation import batch_time_ms

    millis = batch_time_ms(spark)
    return F.current_timestamp().cast("double") if millis is None else millis / F.lit(1000.0)


def _too_far_ahead(spec: FeatureGroupSpec, spark: SparkSession) -> Column | None:
    bound = spec.event_time.max_future
    if bound is None:
        return None
    source_time = F.col(SOURCE_TIME)
    # Kafka reports a record without a timestamp as -1 ms: fall back to processing time then.
    reference_s = F.when(source_time > F.lit(0).cast("timestamp"), source_time.cast("double")) \
        .otherwise(_processing_time_s(spark))
    ahead_s = F.col(spec.event_time.field).cast("double") - reference_s
    return F.coalesce(ahead_s > F.lit(parse_duration_ms(bound) / 1000.0), F.lit(False))


def parse_events(raw: DataFrame, spec: FeatureGroupSpec) -> DataFrame:
    """Source rows (value, topic, partition, offset, timestamp) → one row per record with a reason column.

    Columns: every schema field, `_raw` (the value as text; base64 for Avro and for bytes that are
    not UTF-8), `_payload_encoding` (`utf-8` or `base64`), `_dlq_reason` (null when usable), and
    the source coordinates for the DLQ.
    """
    key, event_time = spec.entity.key, spec.event_time.field
    avro = spec.source.format == "avro"
    bad_utf8, parsed, barrier = (_decode_avro if avro else _decode_json)(spec, raw.sparkSession)
    # Parse once per record: the optimizer would inline a plain `parsed.alias("e")` into every
    # filter below (four parses per record, measured). The jar's UTF-8 check is marked
    # nondeterministic, so the projection holding it beside the parse is a barrier: no filter is
    # pushed through it. Without it (Avro, no jar) a one-element explode is the barrier; that costs
    # ~20% more than the parse itself (1M records: 2.9 s against 2.4 s, measured). The payload for
    # the DLQ is built after the barrier, so the valid rows never copy it.
    struct = parsed.alias("e") if barrier else F.explode(F.array(parsed)).alias("e")
    frame = raw.select(
        "value", F.col("value").isNull().alias(EMPTY), bad_utf8.alias(BAD_UTF8), struct,
        "topic", "partition", "offset", F.col("timestamp").alias(SOURCE_TIME),
    )
    # from_avro has no corrupt-record column: a record it cannot decode comes back as a row of
    # nulls (a record whose every field is null could not be used anyway).
    all_null = reduce(lambda a, b: a & b, [F.col(f"e.{name}").isNull() for name in spec.source.schema_])
    broken = (all_null & ~F.col(EMPTY)) if avro else F.col(f"e.{CORRUPT}").isNotNull()
    fields = [F.col(f"e.{name}").alias(name) for name in spec.source.schema_]
    payload, encoding = _payload(avro)
    frame = frame.select(*fields, broken.alias(CORRUPT), payload.alias(RAW), encoding.alias(ENCODING), EMPTY,
                         BAD_UTF8, "topic", "partition", "offset", SOURCE_TIME)
    frame = frame.withColumn(event_time, _event_time(spec, F.col(event_time)))
    malformed = "malformed Avro (or every field null)" if avro else "malformed JSON or a field of the wrong type"
    reason = (
        F.when(F.col(EMPTY), F.lit("empty message"))
        .when(F.col(BAD_UTF8), F.lit("invalid UTF-8: the payload is not UTF-8 text (kept as base64)"))
        .when(F.col(CORRUPT), F.lit(malformed))
        .when(F.col(key).isNull(), F.lit(f"missing entity key {key}"))
        .when(F.col(event_time).isNull(), F.lit(f"missing or unparsable event time {event_time}"))
    )
    for check, text in [*_non_finite(spec, frame), *_too_large(spec)]:
        reason = reason.when(check, F.lit(text))
    ahead = _too_far_ahead(spec, raw.sparkSession)
    if ahead is not None:
        reason = reason.when(ahead, F.lit(f"event time {event_time} too far in the future: more than "
                                          f"{spec.event_time.max_future} after the record's timestamp"))
    return frame.withColumn(REASON, reason).drop(CORRUPT, EMPTY, BAD_UTF8)


def valid_events(parsed: DataFrame, spec: FeatureGroupSpec) -> DataFrame:
    return parsed.where(F.col(REASON).isNull()).select(*spec.source.schema_)


def _dlq_time(spark: SparkSession) -> Column:
    from featurestream.engine.aggregation import batch_timestamp

    return batch_timestamp(spark).alias("dlq_time")


def invalid_events(parsed: DataFrame) -> DataFrame:
    """The DLQ rows: the original payload (`payload_encoding` says how to read it back), why it
    was refused, and where it came from."""
    return parsed.where(F.col(REASON).isNotNull()).select(
        F.col(RAW).alias("payload"), F.col(ENCODING).alias("payload_encoding"), F.col(REASON).alias("reason"),
        "topic", "partition", "offset", SOURCE_TIME, _dlq_time(parsed.sparkSession),
    )


def routed_events(parsed: DataFrame, spec: FeatureGroupSpec) -> DataFrame:
    """Every record of the source, usable or not, for the one pass that feeds the engine.

    The schema's columns, plus `_dlq`: null for a usable event, else the DLQ row (the payload,
    its encoding, the reason, where the record came from). An invalid record's event time is set
    to null, so it can move neither the watermark nor a window: the engine passes it on like a
    late event, whole, and the micro-batch's writer sends it to the DLQ (`featurestream.engine.
    pipeline`). This is how one read of the source feeds both the features and the DLQ.
    `_origin` (see ORIGIN) when the group's transforms may still refuse a usable event.
    """
    invalid = F.col(REASON).isNotNull()
    dlq = F.struct(F.col(RAW).alias("payload"), F.col(ENCODING).alias("payload_encoding"),
                   F.col(REASON).alias("reason"), "topic", "partition", "offset", SOURCE_TIME)
    event_time = spec.event_time.field
    columns = [F.when(~invalid, F.col(f"`{name}`")).alias(name) if name == event_time else F.col(f"`{name}`")
               for name in spec.source.schema_]
    if spec.derived_string_limits():
        origin = F.struct(F.col(RAW).alias("payload"), F.col(ENCODING).alias("payload_encoding"),
                          "topic", "partition", "offset", SOURCE_TIME)
        columns.append(F.when(~invalid, origin).alias(ORIGIN))
    return parsed.select(*columns, F.when(invalid, dlq).alias(DLQ))
