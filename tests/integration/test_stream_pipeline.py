"""Kafka → Spark → PutRecord → GetRecord, checked against an independent DuckDB computation."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import boto3
import pyarrow.parquet as pq
import pytest

from featurestream.config import load_feature_group, load_profile
from featurestream.config.feature_group import with_transport
from featurestream.connectors.provisioning import ensure_feature_group
from featurestream.dev.generator import (
    GeneratorSettings,
    encode,
    ensure_stream,
    ensure_topic,
    generate_events,
    produce_kafka,
    produce_kinesis,
    recent_start,
)
from featurestream.engine.pipeline import start_stream
from tests.integration.oracle import expected_records

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _spec_and_profile(tmp_path: Path, stack_env: dict[str, str], transport: str = "kafka"):
    suffix = uuid.uuid4().hex[:8]
    spec = load_feature_group(ROOT / "conf/feature_groups/card_activity.yaml")
    spec = spec.model_copy(update={
        "source": spec.source.model_copy(update={"topic": f"payments-it-{suffix}"}),
        "online_store": spec.online_store.model_copy(update={"feature_group_name": f"card-activity-it-{suffix}"}),
    })
    if transport == "kinesis":
        spec = with_transport(spec, "kinesis")
        # Several micro-batches per run, as with Kafka below.
        spec = spec.model_copy(update={"source": spec.source.model_copy(update={"max_records_per_shard": 400})})
    profile = load_profile("local")
    profile = profile.model_copy(update={
        "checkpoint_root": str(tmp_path / "checkpoints"),
        "dlq_path": str(tmp_path / "dlq"),
        # Small triggers so one run spans several micro-batches.
        "kafka": profile.kafka.model_copy(update={"bootstrap_servers": stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"],
                                                  "max_offsets_per_trigger": 700}),
    })
    return spec, profile


def _run_available_now(spark, spec, profile) -> None:
    queries = start_stream(spark, spec, profile, available_now=True)
    for query in queries.all():
        query.awaitTermination()
        assert query.exception() is None, query.exception()


@pytest.mark.parametrize("transport", ["kafka", "kinesis"])
def test_stream_to_online_store_matches_independent_computation(spark, stack_env, tmp_path: Path,
                                                                 transport: str) -> None:
    spec, profile = _spec_and_profile(tmp_path, stack_env, transport)
    sagemaker = boto3.client("sagemaker")
    ensure_feature_group(sagemaker, spec, profile)
    bootstrap = profile.kafka.bootstrap_servers

    # 10 minutes of event time (5 events/s), 60 cards, 3% malformed records, in two deliveries
    # with a restart from the checkpoint in between.
    settings = GeneratorSettings(entities=60, seed=7, events_per_second=5.0,
                                 start=recent_start(3000 / 5.0), malformed_rate=0.03)
    events = generate_events(3000, settings)
    records = list(encode(events, settings))
    malformed = sum(1 for key, _ in records if key is None)
    assert malformed > 0
    half = len(records) // 2
    if transport == "kafka":
        ensure_topic(bootstrap, spec.source.topic, partitions=3)
        produce = lambda part: produce_kafka(part, bootstrap, spec.source.topic)  # noqa: E731
    else:
        ensure_stream(spec.source.stream, shards=2)
        produce = lambda part: produce_kinesis(part, spec.source.stream)  # noqa: E731
    produce(records[:half])
    _run_available_now(spark, spec, profile)
    produce(records[half:])
    _run_available_now(spark, spec, profile)

    expected = expected_records(events, tile_s=spec.windows.tile_ms // 1000,
                                window_s=spec.features[0].output_names()[0][1] // 1000)
    runtime = boto3.client("sagemaker-featurestore-runtime")
    mismatches = []
    for row in expected.itertuples():
        got = runtime.get_record(FeatureGroupName=spec.online_store.feature_group_name,
                                 RecordIdentifierValueAsString=row.card_id)
        values = {f["FeatureName"]: f["ValueAsString"] for f in got.get("Record", [])}
        as_of = row.as_of.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        ok = (
            values.get("event_time") == as_of
            and int(values.get("txn_count_5m", -1)) == row.txn_count
            and abs(float(values.get("amount_sum_5m", "nan")) - row.amount_sum) <= 1e-6 * max(1.0, row.amount_sum)
        )
        if not ok:
            mismatches.append((row.card_id, values, row))
    assert len(expected) == 60
    assert not mismatches, mismatches[:3]

    # Nothing lost: every record is either aggregated or in the DLQ with a reason.
    dlq = pq.read_table(os.path.join(profile.dlq_path, spec.name, "events")).to_pandas()
    assert len(dlq) == malformed
    assert set(dlq["reason"]) <= {
        "malformed JSON or a field of the wrong type", "missing entity key card_id",
        "missing or unparsable event time event_time",
    }
    assert dlq["reason"].notna().all() and dlq["payload"].notna().all()
