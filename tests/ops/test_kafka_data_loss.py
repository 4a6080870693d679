"""Issue 19, finding 10: Kafka records deleted (retention) before the job read them.

`kafka.fail_on_data_loss: true` (the default outside the local profile): the job stops at once
(no restart: the same offsets are missing the next time) with one line and exit code 1.
`false`: the job goes on and the skipped records are counted exactly, so the counts reconcile:
in = read + lost. Real Kafka: the records are deleted with the admin API's DeleteRecords.
"""

from __future__ import annotations

import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from prometheus_client import CollectorRegistry

from featurestream.config import load_feature_group, load_profile
from featurestream.connectors.provisioning import ensure_feature_group
from featurestream.dev.generator import (
    GeneratorSettings,
    delete_records_before,
    encode,
    ensure_topic,
    generate_events,
    produce_kafka,
    recent_start,
)
from featurestream.engine.pipeline import start_stream
from featurestream.engine.transforms import FILTERED_OBSERVATION
from featurestream.ops.listener import OpsListener, drain
from featurestream.ops.metrics import JobMetrics
from tests.ops.job import JobProcess
from tests.ops.test_metrics import scrape

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
READ_FIRST, PRODUCED_AFTER, DELETED = 100, 200, 150  # offsets [100, 250) are gone before they are read


def _profile(path: Path, bootstrap: str, work: Path, checkpoints: Path, fail: bool) -> Path:
    path.write_text(yaml.safe_dump({
        "kind": "local",
        "kafka": {"bootstrap_servers": bootstrap, "fail_on_data_loss": fail},
        "feature_store": {"offline_store_s3_uri": "s3://featurestream-offline/data-loss",
                          "role_arn": "arn:aws:iam::123456789012:role/featurestream-local"},
        "spark": {"master": "local[2]", "shuffle_partitions": 2, "trigger_interval": "1 second"},
        "checkpoint_root": str(checkpoints), "dlq_path": str(work / "dlq"),
        "metrics": {"port": 0}, "lineage": {"file": str(work / "lineage.jsonl")},
        # Restarts allowed: a data-loss failure must not use them.
        "recovery": {"max_restarts": 3, "backoff": "1s"},
    }))
    return path


def _run_in_process(spark: Any, spec: Any, profile: Any) -> Any:
    queries = start_stream(spark, spec, profile, available_now=True)
    for query in queries.all():
        query.awaitTermination()
        assert query.exception() is None, query.exception()
    return queries


def test_deleted_records_fail_the_job_or_are_counted(spark: Any, stack_env: dict[str, str], tmp_path: Path) -> None:
    bootstrap = stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"]
    suffix = uuid.uuid4().hex[:8]
    group = yaml.safe_load((ROOT / "conf/feature_groups/card_activity.yaml").read_text())
    group["source"]["topic"] = topic = f"data-loss-{suffix}"
    group["online_store"]["feature_group_name"] = f"data-loss-{suffix}"
    group_file = tmp_path / "card_activity.yaml"
    group_file.write_text(yaml.safe_dump(group))
    spec = load_feature_group(group_file)
    lenient = _profile(tmp_path / "lenient.yaml", bootstrap, tmp_path, tmp_path / "cp", fail=False)
    strict = _profile(tmp_path / "strict.yaml", bootstrap, tmp_path, tmp_path / "cp-strict", fail=True)
    ensure_feature_group(boto3.client("sagemaker"), spec, load_profile(lenient))
    settings = GeneratorSettings(entities=20, seed=5, events_per_second=2.0, start=recent_start(300 / 2.0))
    records = list(encode(generate_events(READ_FIRST + PRODUCED_AFTER, settings), settings))
    ensure_topic(bootstrap, topic, partitions=1)

    produce_kafka(records[:READ_FIRST], bootstrap, topic)
    _run_in_process(spark, spec, load_profile(lenient))  # the checkpoint now ends at offset 100
    produce_kafka(records[READ_FIRST:], bootstrap, topic)
    delete_records_before(bootstrap, topic, {0: READ_FIRST + DELETED})
    shutil.copytree(tmp_path / "cp", tmp_path / "cp-strict")

    job = JobProcess(["--feature-group", str(group_file), "--env", str(strict), "--available-now"],
                     tmp_path / "strict-run").start()
    assert job.proc is not None
    assert job.proc.wait(timeout=600) == 1
    (last,) = [line for line in job.stderr_path.read_text().splitlines() if line.startswith("featurestream: ")]
    assert re.fullmatch(rf"featurestream: stream: (query card_activity-(features|dlq): )?Kafka records were deleted "
                        rf"before the job read them \(offset {READ_FIRST} of {topic}-0; retention or a deleted "
                        r"topic\) and kafka.fail_on_data_loss is true; .*featurestream_events_lost_total\)", last), last
    assert not [e for e in job.events() if e.get("event") == "query_failed"], "a data-loss failure is not retried"

    metrics = JobMetrics(CollectorRegistry())
    listener = OpsListener(metrics)
    spark.streams.addListener(listener)
    try:
        queries = _run_in_process(spark, spec, load_profile(lenient))
        drain(spark, 120.0)  # the listener bus is asynchronous: every progress event delivered
    finally:
        spark.streams.removeListener(listener)
    values = scrape(metrics.registry)
    names = [str(q.name) for q in queries.all()]
    lost = {n: values.get(("featurestream_events_lost_total", (("query", n),)), 0.0) for n in names}
    assert lost == {n: DELETED for n in names}
    filtered = sum(int((p.get("observedMetrics") or {}).get(FILTERED_OBSERVATION, {}).get("rows", 0))
                   for p in queries.features.recentProgress)
    engine = queries.metrics
    # in = read + lost, each side measured apart: the engine's outcomes and the counter.
    assert engine.aggregated + engine.duplicates + engine.late_events + filtered == PRODUCED_AFTER - DELETED
