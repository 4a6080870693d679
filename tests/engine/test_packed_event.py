"""A late event and a DLQ row read back exactly after the tile engine carried them packed in `_event`.

`aggregation.engine_input` packs the whole event into one binary value (`PackedRow`, the bytes of
its UnsafeRow); the late sink and the DLQ unpack it with the events' type. Here a wide event of every
type a source schema allows (decimals, binary up to 10 MB, text with escapes, NUL and emoji, NaN
and -0.0, microsecond timestamps, nulls everywhere) goes through the engine's batch pass (the
backfill's `HistoryPass`, the same engine classes as the stream's) below the watermark, beside a
record bound for the DLQ (Kafka's and Kinesis' DLQ row), and the files the writer leaves hold the
values that went in.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from featurestream.config import load_feature_group

SCHEMA = {
    "card_id": "string",
    "event_time": "timestamp",
    "amount": "double",
    "ratio": "float",
    "tiny": "tinyint",
    "small": "smallint",
    "n": "int",
    "big": "bigint",
    "flag": "boolean",
    "day": "date",
    "payload": "binary",
    "price": "decimal(38,18)",
    "cents": "decimal(10,2)",
    "note": "string",
}
KAFKA_DLQ = (
    "payload string, payload_encoding string, reason string, topic string, partition int, offset long, "
    "kafka_timestamp timestamp"
)
KINESIS_DLQ = (
    "payload string, payload_encoding string, reason string, topic string, partition string, "
    "offset string, kafka_timestamp timestamp"
)


def _spec(tmp_path: Path) -> Any:
    data = {
        "entity": {"key": "card_id"},
        "event_time": {"field": "event_time"},
        "source": {"type": "kafka", "topic": "payments", "format": "json", "schema": SCHEMA},
        "windows": {"tile": "1m", "allowed_lateness": "5m"},
        "features": [{"name": "n_events", "agg": "count", "windows": ["10m"]}],
        "online_store": {"feature_group_name": "packed-event-test"},
    }
    path = tmp_path / "packed.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_feature_group(path)


def _events(t0: datetime) -> list[tuple[Any, ...]]:
    text = '{"a": "\\u00e9\\n"}\n\t\u00e9\U0001f600"\\\u0000end'
    big = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    return [
        (
            "c1",
            t0 + timedelta(microseconds=123457),
            math.nan,
            -0.0,
            -128,
            32767,
            -(2**31),
            2**63 - 1,
            True,
            date(1969, 12, 31),
            big,
            Decimal("12345678901234567890.123456789012345678"),
            Decimal("-99999999.99"),
            text,
        ),
        (
            "c\u00e9\U0001f600",
            t0 - timedelta(days=400, microseconds=1),
            math.inf,
            1.5,
            0,
            0,
            0,
            0,
            False,
            date(2026, 2, 28),
            b"",
            Decimal("-0.000000000000000001"),
            Decimal("0.00"),
            "",
        ),
        ("c3", t0, None, None, None, None, None, None, None, None, None, None, None, None),
    ]


@pytest.mark.parametrize("dlq_type", [KAFKA_DLQ, KINESIS_DLQ], ids=["kafka", "kinesis"])
def test_a_late_event_and_a_dlq_row_read_back_exactly(spark: Any, tmp_path: Path, dlq_type: str) -> None:
    from pyspark.sql import functions as F

    from featurestream.engine import aggregation
    from featurestream.engine.pipeline import FeatureBatchWriter, _Timer, batch_counters

    spec = _spec(tmp_path)
    t0 = datetime(2026, 3, 29, 1, 30, 5, tzinfo=UTC)
    columns = ", ".join(f"{name} {kind}" for name, kind in SCHEMA.items())
    events = spark.createDataFrame(_events(t0), columns).withColumn("_dlq", F.lit(None).cast(f"struct<{dlq_type}>"))
    kafka = "partition int" in dlq_type
    dlq_row = (
        '{"x": "\\"q\\"\\n"}\u00e9\U0001f600\u0000',
        "utf-8",
        "malformed JSON: x",
        "payments",
        7 if kafka else "shardId-000000000001",
        2**40 + 1 if kafka else "4959" * 14,
        t0 + timedelta(microseconds=999999),
    )
    invalid = spark.createDataFrame([(dlq_row,)], f"_dlq struct<{dlq_type}>")
    routed = events.unionByName(invalid, allowMissingColumns=True)
    watermark = int((t0 + timedelta(days=1)).timestamp() * 1000)  # every event is late
    laid_out = aggregation.history_input(routed, spec, watermark=watermark)
    output = aggregation.run_history_pass(
        laid_out,
        spark.createDataFrame([], "_key string, _state binary"),
        spec,
        watermark=watermark,
        watermark_after=watermark,
    ).persist()
    try:
        packed = aggregation.event_type(routed)
        assert dict(output.dtypes)[aggregation.EVENT] == "binary"
        writer = FeatureBatchWriter(
            spec, None, str(tmp_path / "late"), dlq_root=str(tmp_path / "dlq"), event_type=packed
        )
        counters = batch_counters(output, packed)
        assert (counters["late_events"], counters["dlq"]) == (3, 1)
        writer.write_rejected(output, 0, counters, _Timer())
    finally:
        output.unpersist()

    late = spark.read.parquet(str(tmp_path / "late" / "batch_id=0"))
    assert late.columns == [*SCHEMA, "late_by_ms", "watermark"]
    assert [f.dataType for f in late.schema.fields[: len(SCHEMA)]] == [f.dataType for f in events.schema.fields[:-1]]
    found = sorted((tuple(r)[: len(SCHEMA)] for r in late.collect()), key=lambda r: r[0])
    expected = sorted((tuple(r)[: len(SCHEMA)] for r in events.collect()), key=lambda r: r[0])
    assert len(found) == len(expected) == 3
    for got, want in zip(found, expected, strict=True):
        for value, wanted in zip(got, want, strict=True):
            if isinstance(wanted, float) and math.isnan(wanted):
                assert isinstance(value, float) and math.isnan(value)
            elif isinstance(wanted, float):
                assert value == wanted and math.copysign(1, value) == math.copysign(1, wanted)
            else:
                assert value == wanted and type(value) is type(wanted)

    dlq = spark.read.parquet(str(tmp_path / "dlq" / "batch_id=0"))
    assert dlq.columns == [*invalid.schema["_dlq"].dataType.names, "dlq_time"]
    rows = dlq.drop("dlq_time").collect()
    assert [tuple(r) for r in rows] == [tuple(invalid.first()["_dlq"])]
