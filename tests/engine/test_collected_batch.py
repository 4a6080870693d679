"""A small micro-batch of the shipped query is one Spark job (pipeline.SourceBatchWriter, driver_batch).

Two groups on one topic, a long-running query fed round by round. Spark's status tracker counts the
query's jobs; Spark's progress counts its micro-batches. After the first micro-batch of the start
(cached, it may carry a backlog), a batch of records only takes one Spark job, whatever the number of
groups; a batch with a late event and an invalid record adds one Parquet write per group and file,
and the late sink, the DLQ, the online records and the counters hold what an independent count says.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq

from featurestream.config import load_feature_group, load_profile
from featurestream.connectors.provisioning import ensure_feature_group
from featurestream.dev.generator import ensure_topic, produce_kafka
from featurestream.engine.pipeline import dlq_events_path, late_path, start_source_query

GROUP = """
entity: {key: card_id}
event_time: {field: event_time}
source:
  type: kafka
  topic: TOPIC
  schema: {card_id: string, amount: double, event_time: timestamp}
windows: {tile: 1m, allowed_lateness: 5m}
features:
  - {name: n, agg: count, windows: [10m]}
online_store: {feature_group_name: FGNAME, ttl: 7d}
"""
CARDS = 8


def _event(card: int, at: datetime) -> tuple[bytes, bytes]:
    body = {"card_id": f"c{card}", "amount": 1.0, "event_time": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return f"c{card}".encode(), json.dumps(body).encode()


def test_a_small_batch_is_one_spark_job(stack_env: dict[str, str], spark: Any, tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    specs = []
    for name in ("alpha", "beta"):
        path = tmp_path / f"{name}.yaml"
        path.write_text(GROUP.replace("TOPIC", f"one-job-{suffix}").replace("FGNAME", f"{name}-{suffix}"))
        specs.append(load_feature_group(path))
    profile = load_profile("local")
    profile = profile.model_copy(update={
        "checkpoint_root": str(tmp_path / "checkpoints"), "dlq_path": str(tmp_path / "dlq"),
        "kafka": profile.kafka.model_copy(update={"bootstrap_servers": stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"]}),
        "spark": profile.spark.model_copy(update={"trigger_interval": "200 milliseconds"}),
    })
    for spec in specs:
        ensure_feature_group(boto3.client("sagemaker"), spec, profile)
    bootstrap, topic = profile.kafka.bootstrap_servers, specs[0].source.topic
    ensure_topic(bootstrap, topic, partitions=2)
    # No batch without data between the rounds (Spark runs one when the watermark moves): each
    # round's jobs and batches are then counted with nothing running.
    key = "spark.sql.streaming.noDataMicroBatches.enabled"
    spark.conf.set(key, "false")
    try:
        started = start_source_query(spark, specs, profile)
    finally:
        spark.conf.unset(key)
    query, tracker = started.query, spark.sparkContext.statusTracker()

    def round_of(events: list[tuple[bytes | None, bytes]]) -> tuple[int, int]:
        """Spark jobs and micro-batches the round took."""
        jobs, batches = len(tracker.getJobIdsForGroup(str(query.runId))), len(query.recentProgress)
        produce_kafka(events, bootstrap, topic)
        query.processAllAvailable()
        return len(tracker.getJobIdsForGroup(str(query.runId))) - jobs, len(query.recentProgress) - batches

    t0 = (datetime.now(UTC) - timedelta(hours=1)).replace(second=0, microsecond=0)
    try:
        round_of([_event(card, t0) for card in range(CARDS)])  # the first batch: cached
        jobs, batches = round_of([_event(card, t0 + timedelta(minutes=1)) for card in range(CARDS)])
        assert batches >= 1 and jobs == batches
        # Watermark now t0 + 1m - 5m: an event at t0 - 10m is late; a record that is not JSON goes to the DLQ.
        jobs, batches = round_of([_event(card, t0 + timedelta(minutes=2)) for card in range(CARDS // 2)]
                                 + [_event(0, t0 - timedelta(minutes=10)), (None, b"{not json")])
        assert batches >= 1 and jobs == batches + 2 * 2  # a late file and a DLQ file per group
    finally:
        query.stop()
    assert query.exception() is None

    runtime = boto3.client("sagemaker-featurestore-runtime")
    for spec, metrics in zip(specs, started.metrics, strict=True):
        late = [(r["card_id"], r["event_time"].replace(tzinfo=UTC))
                for r in pq.read_table(late_path(spec, profile)).to_pylist()]
        assert late == [("c0", t0 - timedelta(minutes=10))]
        dlq = pq.read_table(dlq_events_path(spec, profile)).to_pylist()
        assert [(r["payload"], r["reason"]) for r in dlq] == [
            ("{not json", "malformed JSON or a field of the wrong type")]
        assert (metrics.aggregated, metrics.late_events, metrics.dlq) == (CARDS * 2 + CARDS // 2, 1, 1)
        for card in range(CARDS):
            got = runtime.get_record(FeatureGroupName=spec.online_store.feature_group_name,
                                     RecordIdentifierValueAsString=f"c{card}")
            values = {f["FeatureName"]: f["ValueAsString"] for f in got["Record"]}
            newest = t0 + timedelta(minutes=2 if card < CARDS // 2 else 1)
            assert (values["n_10m"], values["event_time"]) == (
                str(3 if card < CARDS // 2 else 2), newest.strftime("%Y-%m-%dT%H:%M:%S.000Z"))
