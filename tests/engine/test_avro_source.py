"""Avro values (plain and Confluent-framed) parse into the same typed events as JSON; junk goes to the DLQ."""

from __future__ import annotations

import io
import json
import struct
from datetime import UTC, datetime
from pathlib import Path

import fastavro
import pytest
import yaml

from featurestream.config import load_feature_group
from featurestream.engine.parsing import REASON, invalid_events, parse_events, valid_events

SCHEMA = {"type": "record", "name": "Payment", "fields": [
    {"name": "card_id", "type": ["null", "string"]},
    {"name": "amount", "type": ["null", "double"]},
    {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-millis"}},
]}
T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def _spec(tmp_path: Path, framing: str):
    data = {
        "entity": {"key": "card_id"}, "event_time": {"field": "event_time"},
        "source": {"type": "kafka", "topic": "payments", "format": "avro", "avro_schema": SCHEMA,
                   "avro_framing": framing},
        "features": [{"name": "n", "agg": "count", "windows": ["5m"]}],
        "online_store": {"feature_group_name": "avro-test"},
    }
    path = tmp_path / "avro_cards.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_feature_group(path)


def _encode(record: dict[str, object], framing: str) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, fastavro.parse_schema(SCHEMA), record)
    body = out.getvalue()
    return (b"\x00" + struct.pack(">I", 42) + body) if framing == "confluent" else body


def _has_spark_avro(spark) -> bool:
    jvm = spark.sparkContext._jvm
    try:
        loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
        jvm.java.lang.Class.forName("org.apache.spark.sql.avro.AvroDataToCatalyst", False, loader)
    except Exception:  # py4j reports a missing class as a generic error
        return False
    return True


@pytest.mark.parametrize("framing", ["plain", "confluent"])
def test_avro_values_parse_and_bad_ones_get_a_reason(spark, tmp_path: Path, framing: str) -> None:
    if not _has_spark_avro(spark):
        pytest.skip("org.apache.spark:spark-avro_2.12 is not on the classpath (conf/jars/pom.xml)")
    spec = _spec(tmp_path, framing)
    good = {"card_id": "c1", "amount": 12.5, "event_time": T0}
    no_key = {"card_id": None, "amount": 1.0, "event_time": T0}
    values = [_encode(good, framing), _encode(no_key, framing), b"\x07junk"]
    rows = [(v, "payments", 0, i, T0) for i, v in enumerate(values)]
    raw = spark.createDataFrame(rows, "value binary, topic string, partition int, offset long, timestamp timestamp")
    parsed = parse_events(raw, spec).cache()
    events = valid_events(parsed, spec).collect()
    assert [(e.card_id, e.amount, e.event_time.replace(tzinfo=UTC)) for e in events] == [("c1", 12.5, T0)]
    reasons = sorted(r[REASON] for r in parsed.where(parsed[REASON].isNotNull()).collect())
    assert reasons == ["malformed Avro (or every field null)", "missing entity key card_id"]
    assert invalid_events(parsed).count() == 2
    assert json.loads(spec.source.avro_schema_json()) == SCHEMA
