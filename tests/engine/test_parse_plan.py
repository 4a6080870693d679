"""The parse step parses each record once, with no explode, and its DLQ checks still see every class.

The optimizer would inline `from_json` into each DLQ check (a filter pushed through the projection
that parses); the jar's UTF-8 check is marked nondeterministic so that projection is a barrier.
This checks the physical plans of both queries built on the parse step (features and DLQ) and
that the valid and invalid rows split as the reasons say.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from featurestream.config import load_feature_group
from featurestream.engine.parsing import invalid_events, parse_events, valid_events


def _spec(tmp_path: Path) -> Any:
    data = {
        "entity": {"key": "card_id"}, "event_time": {"field": "event_time", "max_future": "1d"},
        "source": {"type": "kafka", "topic": "payments", "format": "json",
                   "schema": {"card_id": "string", "amount": "double", "event_time": "timestamp"}},
        "features": [{"name": "n", "agg": "count", "windows": ["5m"]}],
        "online_store": {"feature_group_name": "parse-plan-test"},
    }
    path = tmp_path / "plan_cards.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_feature_group(path)


def _plan(frame: Any) -> str:
    return str(frame._jdf.queryExecution().executedPlan().toString())


def test_each_record_is_parsed_once_and_every_reason_survives(spark: Any, tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    good = json.dumps({"card_id": "c1", "amount": 2.5, "event_time": "2026-11-26T09:00:00Z"}).encode()
    rows = [
        (good, 0),
        (None, 1),                                         # empty message
        (b"\xff" + good, 2),                               # invalid UTF-8
        (b'{"card_id": "c1", "amount": "x"}', 3),          # wrong type
        (json.dumps({"amount": 1.0, "event_time": "2026-11-26T09:00:00Z"}).encode(), 4),  # no key
        (json.dumps({"card_id": "c2", "amount": 1.0}).encode(), 5),                       # no event time
    ]
    raw = spark.createDataFrame(
        [(value, "payments", 0, offset, None) for value, offset in rows],
        "value binary, topic string, partition int, offset long, timestamp timestamp",
    )
    parsed = parse_events(raw, spec)
    valid, invalid = valid_events(parsed, spec), invalid_events(parsed)
    for frame in (valid, invalid):
        plan = _plan(frame)
        assert plan.count("from_json(") == 1, plan
        assert "Generate" not in plan, plan
    assert [(r["card_id"], r["amount"]) for r in valid.collect()] == [("c1", 2.5)]
    reasons = {r["offset"]: r["reason"] for r in invalid.collect()}
    assert sorted(reasons) == [1, 2, 3, 4, 5]
    assert reasons[1] == "empty message"
    assert reasons[2].startswith("invalid UTF-8")
    assert reasons[3].startswith("malformed JSON")
    assert reasons[4] == "missing entity key card_id"
    assert reasons[5] == "missing or unparsable event time event_time"


def _code(frame: Any) -> list[str]:
    """The source of every whole-stage class of the frame's plan (without running it)."""
    stages = frame._jdf.queryExecution().debug().codegenToSeq()
    return [str(stages.apply(i)._2()) for i in range(stages.size())]


def test_the_future_bound_leaves_the_generated_code_the_same_in_every_batch(spark: Any, tmp_path: Path) -> None:
    """Each plan of the parse step gets a new processing time (as each micro-batch does); its code
    must not change with it, or every micro-batch compiles new classes. The bound still holds, from
    the batch's timestamp that the foreachBatch body sets (here by hand: 2020-01-01 00:00 UTC) for
    a record without a source timestamp."""
    spec = _spec(tmp_path)
    event = json.dumps({"card_id": "c1", "amount": 1.0, "event_time": "2020-01-02T12:00:00Z"}).encode()
    raw = spark.createDataFrame([(event, "payments", 0, 0, None)],
                                "value binary, topic string, partition int, offset long, timestamp timestamp")
    codes = [_code(valid_events(parse_events(raw, spec), spec)) for _ in range(2)]
    assert codes[0], "no whole-stage code generated"
    assert codes[0] == codes[1]

    assert invalid_events(parse_events(raw, spec)).count() == 0  # 2020 is in the past of the task's clock
    context = spark.sparkContext
    context.setLocalProperty("featurestream.tiles.batchTime", "7:1577836800000")
    try:
        reasons = [r["reason"] for r in invalid_events(parse_events(raw, spec)).collect()]
    finally:
        context.setLocalProperty("featurestream.tiles.batchTime", None)
    assert reasons == ["event time event_time too far in the future: more than 1d after the record's timestamp"]


def _engine_dlq_output(spark: Any, dlq_type: str, row: tuple[Any, ...]) -> tuple[Any, Any]:
    """An engine output row bound for the DLQ, as `aggregation.engine_input` lays it out (the event,
    here its DLQ row alone, packed in `_event`), and the packed event's type."""
    from pyspark.sql import functions as F

    from featurestream.engine.aggregation import EVENT, KIND, LATE, event_type, pack_event

    events = spark.createDataFrame([(row,)], f"_dlq struct<{dlq_type}>")
    output = events.select(F.lit(LATE).alias(KIND), pack_event(events).alias(EVENT))
    return output, event_type(events)


def test_dlq_time_is_the_batch_time_and_leaves_the_code_the_same(spark: Any, tmp_path: Path) -> None:
    """`dlq_time` of the DLQ's rows (the parse step's and the engine output's) is the micro-batch's
    timestamp that the foreachBatch body sets from the offset log (here by hand: 2020-01-01 00:00
    UTC), not the clock when the rows are written, so a replayed batch writes the same rows; and
    unlike `current_timestamp()` it leaves every batch's generated code the same."""
    from featurestream.engine.aggregation import dlq_events

    spec = _spec(tmp_path)
    raw = spark.createDataFrame([(None, "payments", 0, 3, None)],
                                "value binary, topic string, partition int, offset long, timestamp timestamp")
    output, dlq_type = _engine_dlq_output(
        spark, "payload string, payload_encoding string, reason string, topic string, partition int, "
               "offset long, kafka_timestamp timestamp", ("x", "utf-8", "empty message", "payments", 0, 3, None))
    frames = (lambda: invalid_events(parse_events(raw, spec)), lambda: dlq_events(output, dlq_type))
    for frame in frames:
        codes = [_code(frame()) for _ in range(2)]
        assert codes[0], "no whole-stage code generated"
        assert codes[0] == codes[1]
    context = spark.sparkContext
    context.setLocalProperty("featurestream.tiles.batchTime", "7:1577836800000")
    try:
        times = [[r["dlq_time"] for r in frame().collect()] for frame in frames]
    finally:
        context.setLocalProperty("featurestream.tiles.batchTime", None)
    expected = datetime(2020, 1, 1, tzinfo=UTC).timestamp()
    assert [[t.timestamp() for t in found] for found in times] == [[expected], [expected]]


def test_the_engine_carries_a_dlq_row_exactly(spark: Any) -> None:
    """The DLQ row rides the engine packed in `_event` and reads back as it was, field for field: a
    Kafka row and a Kinesis one (string partition and offset), a timestamp to the microsecond, text
    that JSON would escape, a null field."""
    from featurestream.engine.aggregation import dlq_events

    when = datetime(2026, 3, 29, 1, 30, 5, 123456, tzinfo=UTC)
    cases = [
        ("payload string, payload_encoding string, reason string, topic string, partition int, offset long, "
         "kafka_timestamp timestamp", ('{"a": "\\u00e9\\n"}\n\t\u00e9\U0001f600', "utf-8", "malformed JSON", "t",
                                       7, 2**40 + 1, when)),
        ("payload string, payload_encoding string, reason string, topic string, partition string, "
         "offset string, kafka_timestamp timestamp", ("AAEC", "base64", "empty message", "stream",
                                                      "shardId-000000000001", "4959" * 14, None)),
    ]
    for dlq_type, row in cases:
        output, schema = _engine_dlq_output(spark, dlq_type, row)
        found = dlq_events(output, schema).drop("dlq_time").collect()
        assert len(found) == 1
        got = tuple(found[0])
        assert got[:6] == row[:6]
        assert (got[6] is None) == (row[6] is None)
        if row[6] is not None:
            assert round(got[6].timestamp() * 1e6) == round(row[6].timestamp() * 1e6)
