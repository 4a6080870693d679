"""Raw Kafka records → typed events, with a reason for every record that can't be used.

One pass: `from_json` in PERMISSIVE mode with a corrupt-record column (or `from_avro` in
PERMISSIVE mode, which yields null for a record it cannot decode), then the checks that make an
event usable (entity key and event time present). Good and bad rows are two filters of the same
frame so nothing falls between them: in = valid + invalid.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType, _parse_datatype_string

from featurestream.config.feature_group import FeatureGroupSpec

CORRUPT = "_corrupt_record"
REASON = "_dlq_reason"
RAW = "_raw"


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


def _decode_json(raw: DataFrame, spec: FeatureGroupSpec) -> tuple[Column, Column]:
    text = F.col("value").cast("string")
    return text, F.from_json(text, event_schema(spec), {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT})


def _decode_avro(raw: DataFrame, spec: FeatureGroupSpec) -> tuple[Column, Column]:
    """Avro binary with the configured writer schema; `confluent` framing skips the 5-byte header."""
    from pyspark.sql.avro.functions import from_avro

    value = F.col("value")
    if spec.source.avro_framing == "confluent":
        value = F.expr("substring(value, 6)")
    return F.base64(F.col("value")), from_avro(value, spec.source.avro_schema_json(), {"mode": "PERMISSIVE"})


def parse_events(raw: DataFrame, spec: FeatureGroupSpec) -> DataFrame:
    """Kafka rows (value, topic, partition, offset, ...) → one row per record with a reason column.

    Columns: every schema field, `_raw` (the value as text; base64 for Avro), `_dlq_reason` (null
    when usable), and the Kafka coordinates for the DLQ.
    """
    key, event_time = spec.entity.key, spec.event_time.field
    avro = spec.source.format == "avro"
    text, parsed = (_decode_avro if avro else _decode_json)(raw, spec)
    # Parse once per record: the optimizer would inline a plain `parsed.alias("e")` into every
    # filter below (four parses per record, measured); a one-element explode is a barrier it
    # does not push predicates through.
    frame = raw.select(
        text.alias(RAW), F.explode(F.array(parsed)).alias("e"), "topic", "partition", "offset",
        F.col("timestamp").alias("kafka_timestamp"),
    )
    # from_avro has no corrupt-record column: a record it cannot decode comes back as a row of
    # nulls (a record whose every field is null could not be used anyway).
    all_null = reduce(lambda a, b: a & b, [F.col(f"e.{name}").isNull() for name in spec.source.schema_])
    broken = (all_null & F.col(RAW).isNotNull()) if avro else F.col(f"e.{CORRUPT}").isNotNull()
    fields = [F.col(f"e.{name}").alias(name) for name in spec.source.schema_]
    frame = frame.select(*fields, broken.alias(CORRUPT), RAW, "topic", "partition", "offset", "kafka_timestamp")
    frame = frame.withColumn(event_time, _event_time(spec, F.col(event_time)))
    malformed = "malformed Avro (or every field null)" if avro else "malformed JSON or a field of the wrong type"
    reason = (
        F.when(F.col(RAW).isNull(), F.lit("empty message"))
        .when(F.col(CORRUPT), F.lit(malformed))
        .when(F.col(key).isNull(), F.lit(f"missing entity key {key}"))
        .when(F.col(event_time).isNull(), F.lit(f"missing or unparsable event time {event_time}"))
    )
    return frame.withColumn(REASON, reason).drop(CORRUPT)


def valid_events(parsed: DataFrame, spec: FeatureGroupSpec) -> DataFrame:
    return parsed.where(F.col(REASON).isNull()).select(*spec.source.schema_)


def invalid_events(parsed: DataFrame) -> DataFrame:
    """The DLQ rows: the original payload, why it was refused, and where it came from."""
    return parsed.where(F.col(REASON).isNotNull()).select(
        F.col(RAW).alias("payload"), F.col(REASON).alias("reason"), "topic", "partition", "offset",
        "kafka_timestamp", F.current_timestamp().alias("dlq_time"),
    )
