"""Fuzzing the event parser (issue 19): no record is ever lost or counted twice.

Records are random bytes, valid events mutated byte by byte, oversized values and messages,
NaN/Infinity, deep nesting, bad UTF-8 and empty messages, mixed with valid events, duplicates,
refunds (filtered) and events older than the watermark (late). Two levels:
- the parser alone, many examples: every record comes out exactly once, usable (key, event time,
  finite numbers, strings within their limits) or in the DLQ with a reason and its exact bytes;
- the whole stream (Kafka → Spark → engine → emulator), two micro-batches per example: every
  record produced is exactly one of DLQ, filtered, duplicate, late or aggregated.
Bounded for CI: fixed examples (derandomized), no deadline.
"""

from __future__ import annotations

import base64
import json
import math
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurestream.config import load_feature_group, load_profile
from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.connectors.provisioning import ensure_feature_group
from featurestream.dev.generator import ensure_topic, produce_kafka
from featurestream.engine.parsing import REASON, invalid_events, parse_events
from featurestream.engine.pipeline import start_source_query
from featurestream.engine.transforms import filtered_observation
from featurestream.io import paths

GROUP = """
entity: {key: card_id}
event_time: {field: event_time}
source:
  type: kafka
  topic: TOPIC
  schema: {transaction_id: string, card_id: string, merchant_id: string, amount: double, event_time: timestamp}
  max_string_bytes: {merchant_id: 64}
transforms:
  - filter: "amount > 0"
  - dedupe: {key: transaction_id, within: 5m}
windows: {tile: 1m, allowed_lateness: 2m}
features:
  - {name: n, agg: count, windows: [5m]}
  - {name: total, agg: sum, column: amount, windows: [5m]}
  - {name: last_merchant, agg: last, column: merchant_id}
online_store: {feature_group_name: FGNAME, ttl: 7d}
"""
# Half an hour ago on a minute boundary: every record stays within the group's 7-day TTL.
BASE_MS = (int(time.time()) // 60 - 30) * 60_000
REASONS = ("empty message", "invalid UTF-8", "malformed JSON", "missing entity key", "missing or unparsable event",
           "not a finite number", "value too large", "event time event_time too far in the future")


def _spec(tmp_path: Path, suffix: str, name: str = "fuzz_group", text: str = GROUP) -> FeatureGroupSpec:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace("TOPIC", f"fuzz-{suffix}").replace("FGNAME", f"{name.replace('_', '-')}-{suffix}"))
    return load_feature_group(path)


# Two more groups on the same topic: another filter and no dedupe step; the same event time and lateness.
GROUP_BIG = GROUP.replace('filter: "amount > 0"', 'filter: "amount > 2"')
GROUP_NO_DEDUPE = GROUP.replace("  - dedupe: {key: transaction_id, within: 5m}\n", "")


def _stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@st.composite
def valid_events(draw: Any, at_ms: int) -> dict[str, Any]:
    return {"transaction_id": f"t{draw(st.integers(0, 30))}", "card_id": draw(st.sampled_from(["c1", "c2", "c3"])),
            "merchant_id": draw(st.one_of(st.none(), st.text(max_size=70))),
            "amount": draw(st.sampled_from([-2.0, 0.0, 1.5, 7.25, 100.0])),
            "event_time": _stamp(at_ms + draw(st.integers(-60_000, 60_000)))}


def _mutate(body: bytes, draw: Any) -> bytes:
    """One byte-level edit of a valid payload: cut, insert, overwrite or truncate."""
    kind = draw(st.sampled_from(["cut", "insert", "overwrite", "truncate"]))
    at = draw(st.integers(0, max(0, len(body) - 1)))
    if kind == "cut":
        return body[:at] + body[at + draw(st.integers(1, 8)):]
    if kind == "insert":
        return body[:at] + draw(st.binary(min_size=1, max_size=6)) + body[at:]
    if kind == "overwrite":
        return body[:at] + bytes([draw(st.integers(0, 255))]) + body[at + 1:]
    return body[:at]


@st.composite
def records(draw: Any, at_ms: int) -> bytes | None:
    """One raw Kafka value of any class."""
    event = draw(valid_events(at_ms))
    body = json.dumps(event, ensure_ascii=False).encode()
    kind = draw(st.sampled_from(["valid", "valid", "valid", "random", "mutated", "oversize_value",
                                 "oversize_message", "non_finite", "deep", "bad_utf8", "empty", "types"]))
    if kind == "valid":
        return body
    if kind == "random":
        return draw(st.binary(max_size=120))
    if kind == "mutated":
        return _mutate(body, draw)
    if kind == "oversize_value":
        return json.dumps({**event, "merchant_id": "é" * draw(st.integers(30, 40))}).encode()  # 60-80 bytes
    if kind == "oversize_message":  # 300 KB outside the schema: dropped at parsing, the event counts
        return json.dumps({**event, "blob": "x" * 300_000}).encode()
    if kind == "non_finite":
        token = draw(st.sampled_from(["NaN", "Infinity", "-Infinity", '"NaN"', '"-Infinity"']))
        return json.dumps({**event, "amount": 1.0}).replace('"amount": 1.0', f'"amount": {token}').encode()
    if kind == "deep":
        depth = draw(st.sampled_from([50, 5_000, 50_000]))
        return json.dumps(event)[:-1].encode() + b', "x": ' + b"[" * depth + b"]" * depth + b"}"
    if kind == "bad_utf8":
        at = draw(st.integers(0, len(body)))
        return body[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])) \
            + body[at:]
    if kind == "empty":
        return draw(st.sampled_from([None, b""]))
    return json.dumps({**event, "amount": draw(st.sampled_from(["lots", [1], {"a": 1}, True]))}).encode()


def _parse(spark: Any, spec: FeatureGroupSpec, values: list[bytes | None]) -> tuple[list[Any], list[Any]]:
    rows = [(value, "fuzz", 0, offset, datetime.fromtimestamp(BASE_MS / 1000, UTC))
            for offset, value in enumerate(values)]
    raw = spark.createDataFrame(rows, "value binary, topic string, partition int, offset long, timestamp timestamp")
    parsed = parse_events(raw, spec).cache()
    try:
        return parsed.drop("_raw").collect(), invalid_events(parsed).collect()
    finally:
        parsed.unpersist()


@settings(max_examples=10, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(values=st.lists(records(BASE_MS), min_size=1, max_size=30))
def test_the_parser_accounts_for_every_record(spark: Any, tmp_path_factory: pytest.TempPathFactory,
                                              values: list[bytes | None]) -> None:
    spec = _spec(tmp_path_factory.mktemp("fuzz"), "parse")
    limits = spec.string_limits()
    parsed, dlq = _parse(spark, spec, values)
    assert sorted(int(r["offset"]) for r in parsed) == list(range(len(values)))  # each exactly once
    for row in parsed:
        reason = row[REASON]
        if reason is not None:
            assert reason.startswith(REASONS), reason
            continue
        assert row["card_id"] is not None and row["event_time"] is not None
        assert row["amount"] is None or math.isfinite(row["amount"])
        for column, limit in limits.items():
            assert row[column] is None or len(row[column].encode()) <= limit
    assert len(dlq) == sum(1 for r in parsed if r[REASON] is not None)
    for row in dlq:  # the DLQ keeps the exact bytes that came
        sent = values[int(row["offset"])]
        if sent is None:
            assert row["payload"] is None
        elif row["payload_encoding"] == "base64":
            assert base64.b64decode(row["payload"]) == sent
        else:
            assert row["payload"].encode() == sent


def _dlq_rows(spec: FeatureGroupSpec, profile: Any) -> list[dict[str, Any]]:
    folder = Path(paths.join(profile.dlq_path, spec.name, "events"))
    return pq.read_table(folder).to_pylist() if any(folder.rglob("*.parquet")) else []


def _empty_files(profile: Any) -> list[str]:
    """Parquet files without a row under the DLQ path (a batch with nothing to write must write nothing)."""
    return [str(f) for f in Path(profile.dlq_path).rglob("*.parquet") if pq.read_metadata(f).num_rows == 0]


@pytest.mark.integration
@settings(max_examples=1, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(first=st.lists(records(BASE_MS), min_size=5, max_size=25),
       second=st.lists(records(BASE_MS + 15 * 60_000), min_size=5, max_size=25),
       late=st.lists(valid_events(BASE_MS - 10 * 60_000), min_size=1, max_size=5))
def test_the_stream_accounts_for_every_record(spark: Any, stack_env: dict[str, str],
                                              tmp_path_factory: pytest.TempPathFactory, first: list[bytes | None],
                                              second: list[bytes | None], late: list[dict[str, Any]]) -> None:
    """Three groups on one topic: one query, one Kafka source read once per micro-batch, and per group
    in = DLQ + filtered + duplicates + late + aggregated."""
    work = tmp_path_factory.mktemp("fuzz-stream")
    suffix = uuid.uuid4().hex[:8]
    specs = [_spec(work, suffix, name, text) for name, text in
             (("fuzz_group", GROUP), ("fuzz_big", GROUP_BIG), ("fuzz_no_dedupe", GROUP_NO_DEDUPE))]
    profile = load_profile("local")
    profile = profile.model_copy(update={
        "checkpoint_root": str(work / "checkpoints"), "dlq_path": str(work / "dlq"),
        "kafka": profile.kafka.model_copy(update={"bootstrap_servers": stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"]}),
    })
    for spec in specs:
        ensure_feature_group(boto3.client("sagemaker"), spec, profile)
    topic = specs[0].source.topic
    ensure_topic(profile.kafka.bootstrap_servers, topic, partitions=2)
    # One valid event makes sure the first batch sets a watermark; the second batch, 15 minutes
    # on, brings usable events from before it: late, whatever else the batches hold.
    anchor = json.dumps({"transaction_id": "anchor", "card_id": "c1", "amount": 1.0,
                         "event_time": _stamp(BASE_MS)}).encode()
    old = [json.dumps({**e, "transaction_id": f"late-{i}", "amount": 5.0, "merchant_id": "m"}).encode()
           for i, e in enumerate(late)]
    batches = [[anchor, *first], [*second, *old]]
    outcomes = {spec.name: dict.fromkeys(("aggregated", "duplicates", "late", "filtered"), 0) for spec in specs}
    for batch in batches:
        produce_kafka([(None, value) for value in batch], profile.kafka.bootstrap_servers, topic)
        started = start_source_query(spark, specs, profile, available_now=True)
        started.query.awaitTermination()
        assert started.query.exception() is None, started.query.exception()
        progress = started.query.recentProgress
        assert progress and all(len(p["sources"]) == 1 for p in progress)  # one Kafka source
        # ... read once: Spark counts a source's rows per scan of it in the micro-batch's plan (n times
        # when each group's branch fetched the batch; once when the others reuse the first's shuffle).
        assert sum(int(p["numInputRows"]) for p in progress) == len(batch)
        for spec, totals in zip(started.specs, started.metrics, strict=True):
            counts = outcomes[spec.name]
            counts["aggregated"] += totals.aggregated
            counts["duplicates"] += totals.duplicates
            counts["late"] += totals.late_events
            counts["filtered"] += sum(
                int((p.get("observedMetrics") or {}).get(filtered_observation(spec.name), {}).get("rows", 0))
                for p in progress)
    produced = sum(len(b) for b in batches)
    for spec in specs:
        dlq = _dlq_rows(spec, profile)
        assert all(r["reason"].startswith(REASONS) for r in dlq)
        counts = outcomes[spec.name]
        assert len(dlq) + sum(counts.values()) == produced, (spec.name, len(dlq), counts, produced)
        assert counts["late"] >= len(old)  # the old events were late, not lost (a mutated time may be too)
    assert outcomes["fuzz_no_dedupe"]["duplicates"] == 0
    assert _empty_files(profile) == []
