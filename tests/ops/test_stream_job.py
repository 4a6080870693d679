"""The real `featurestream stream` process against the real stack: metrics served during the run,
SIGTERM with a batch in flight (that batch finishes, the job ends within one trigger interval plus
that batch), a restart that continues from the checkpoint without loss (checked against the
DuckDB oracle), JSON logs with query and batch ids, OpenLineage events, no configured secret (Kafka
SASL/SSL values, fake AWS credentials) in any log or file the job wrote, and a changed
shuffle-partition count refused with exit code 2."""

from __future__ import annotations

import os
import signal
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import boto3
import pyarrow.parquet as pq
import pytest
import yaml

from featurestream.config import load_feature_group, load_profile
from featurestream.connectors.provisioning import ensure_feature_group
from featurestream.dev.generator import (
    GeneratorSettings,
    encode,
    ensure_topic,
    generate_events,
    produce_kafka,
    recent_start,
)
from tests.ops.job import ROOT, JobProcess, batch_ids, in_flight
from tests.ops.online import compare_online

pytestmark = pytest.mark.integration
TRIGGER_S = 2


def iso_seconds(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@dataclass
class Runs:
    work: Path
    spec: Any
    events: list[dict[str, Any]]
    malformed: int
    secrets: list[str]
    scraped: str
    in_flight: int | None
    offsets_after_first: set[int]
    commits_after_first: set[int]
    first: JobProcess
    first_rc: int
    second: JobProcess
    second_rc: int
    third: JobProcess
    third_rc: int
    lineage_file: Path
    checkpoint: Path


def write_profile(path: Path, work: Path, bootstrap: str, shuffle: int, secret_file: Path,
                  per_trigger: int = 150) -> Path:
    """A private profile; its metrics textfile is named after it (each run leaves its own)."""
    path.write_text(yaml.safe_dump({
        "kind": "local",
        "kafka": {"bootstrap_servers": bootstrap, "max_offsets_per_trigger": per_trigger,
                  "options": {"security.protocol": "PLAINTEXT"}},
        "feature_store": {"region": os.environ.get("AWS_REGION", "us-east-1"),
                          "offline_store_s3_uri": "s3://featurestream-offline/ops-tests",
                          "role_arn": "arn:aws:iam::123456789012:role/featurestream-local"},
        "spark": {"master": "local[2]", "shuffle_partitions": shuffle, "trigger_interval": f"{TRIGGER_S} seconds"},
        "checkpoint_root": str(work / "checkpoints"),
        "dlq_path": str(work / "dlq"),
        "metrics": {"port": 0, "textfile": str(work / f"{path.stem}.prom")},
        "lineage": {"file": str(work / "lineage" / "events.jsonl")},
        # Unused by a PLAINTEXT listener, but passed, logged about and planned with like real ones.
        "security": {"kafka_secret_options": {"sasl.jaas.config": {"env": "OPS_TEST_KAFKA_JAAS"},
                                              "ssl.keystore.password": {"file": str(secret_file)}}},
    }))
    return path


@pytest.fixture(scope="module")
def runs(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Runs:
    work = tmp_path_factory.mktemp("ops-job")
    suffix = uuid.uuid4().hex[:8]
    group = yaml.safe_load((ROOT / "conf/feature_groups/card_activity.yaml").read_text())
    group["source"]["topic"] = f"ops-job-{suffix}"
    group["online_store"]["feature_group_name"] = f"ops-job-{suffix}"
    group_file = work / "card_activity.yaml"
    group_file.write_text(yaml.safe_dump(group))
    spec = load_feature_group(group_file)

    jaas_password = f"Jaas-Pw-{uuid.uuid4().hex}"
    keystore_password = f"Keystore-Pw-{uuid.uuid4().hex}"
    secret_file = tmp_path_factory.mktemp("secrets") / "keystore_password"
    secret_file.write_text(keystore_password + "\n")
    jaas = ("org.apache.kafka.common.security.plain.PlainLoginModule required "
            f'username="ops" password="{jaas_password}";')
    bootstrap = stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"]
    profile_file = write_profile(work / "profile.yaml", work, bootstrap, 2, secret_file)
    ensure_feature_group(boto3.client("sagemaker"), spec, load_profile(profile_file))

    settings = GeneratorSettings(entities=40, seed=11, events_per_second=4.0,
                                 start=recent_start(1200 / 4.0), malformed_rate=0.03)
    events = generate_events(1200, settings)
    records = list(encode(events, settings))
    half = len(records) // 2
    ensure_topic(bootstrap, spec.source.topic, partitions=2)
    produce_kafka(records[:half], bootstrap, spec.source.topic)

    args = ["--feature-group", str(group_file), "--env", str(profile_file)]
    # Known fake AWS credentials (the emulator takes any): none may show up in a log or a file.
    aws = {"AWS_ACCESS_KEY_ID": f"AKIA{uuid.uuid4().hex[:16].upper()}",
           "AWS_SECRET_ACCESS_KEY": f"Fake-Aws-Secret-{uuid.uuid4().hex}",
           "AWS_SESSION_TOKEN": f"Fake-Aws-Session-Token-{uuid.uuid4().hex}{uuid.uuid4().hex}"}
    env_secret = {"OPS_TEST_KAFKA_JAAS": jaas, **aws}
    first = JobProcess(args, work / "run1")
    first.env.update(env_secret)
    first.start()
    checkpoint = work / "checkpoints" / spec.name / "features"
    try:
        url = first.wait_for(lambda e: e.get("event") == "metrics_endpoint", 120)["url"]
        # A batch after the first has a watermark, so every metric has a value.
        first.wait_for(lambda e: e.get("event") == "batch_progress" and e.get("query") == f"{spec.name}-features"
                       and "watermark_lag_s" in e, 600)
        scraped = urlopen(url, timeout=10).read().decode()
        # SIGTERM while a batch is in flight: 600 records at 150 per trigger keep it busy.
        deadline = time.monotonic() + 120
        while in_flight(checkpoint) is None and time.monotonic() < deadline and first.proc.poll() is None:
            time.sleep(0.02)
        flight = in_flight(checkpoint)
        first.signal(signal.SIGTERM)
        first_rc = first.wait(300)
    finally:
        first.stop_if_running()
    offsets_after_first, commits_after_first = batch_ids(checkpoint, "offsets"), batch_ids(checkpoint, "commits")

    produce_kafka(records[half:], bootstrap, spec.source.topic)
    # The restart catches up in one batch: the same profile (its textfile is profile.prom too, in
    # its own folder) but for the batch size, which the checkpoint does not fix.
    (work / "catch-up").mkdir()
    catch_up = write_profile(work / "catch-up" / "profile.yaml", work, bootstrap, 2, secret_file, per_trigger=2000)
    second = JobProcess(["--feature-group", str(group_file), "--env", str(catch_up), "--available-now"],
                        work / "run2")
    second.env.update(env_secret)
    # The third run only reads the checkpoint the first one left (its shuffle partitions) and
    # stops before any query starts: it runs beside the second.
    changed = write_profile(work / "profile-changed.yaml", work, bootstrap, 3, secret_file)
    third = JobProcess(["--feature-group", str(group_file), "--env", str(changed), "--available-now"], work / "run3")
    third.env.update(env_secret)
    second.start()
    third.start()
    try:
        second_rc, third_rc = second.wait(900), third.wait(300)
    finally:
        second.stop_if_running()
        third.stop_if_running()
    return Runs(work=work, spec=spec, events=events, malformed=sum(1 for key, _ in records if key is None),
                secrets=[jaas, jaas_password, keystore_password, *aws.values()], scraped=scraped, in_flight=flight,
                offsets_after_first=offsets_after_first, commits_after_first=commits_after_first,
                first=first, first_rc=first_rc, second=second, second_rc=second_rc, third=third, third_rc=third_rc,
                lineage_file=work / "lineage" / "events.jsonl", checkpoint=checkpoint)


@pytest.mark.clock  # freshness and watermark lag: event times (a recent start) against now
def test_metrics_served_during_the_run(runs: Runs) -> None:
    for name in ("featurestream_input_rows_total", "featurestream_batch_duration_seconds_bucket",
                 "featurestream_input_rows_per_second", "featurestream_processed_rows_per_second",
                 "featurestream_watermark_lag_seconds", "featurestream_freshness_seconds_bucket",
                 "featurestream_freshness_quantile_seconds", "featurestream_state_rows",
                 "featurestream_write_records_total", "featurestream_write_latency_seconds",
                 "featurestream_write_retries_total", "featurestream_write_throttles_total",
                 "featurestream_aggregated_events_total", "process_cpu_seconds_total"):
        assert f"\n{name}" in runs.scraped, name
    final = (runs.work / "profile.prom").read_text()
    assert f'featurestream_write_records_total{{feature_group="{runs.spec.online_store.feature_group_name}"' in final
    # The engine counts the DLQ rows it routed, per group: the first half had malformed records.
    dlq = [float(line.rsplit(" ", 1)[1]) for line in final.splitlines()
           if line.startswith("featurestream_events_total{") and 'outcome="dlq"' in line
           and f'query="{runs.spec.name}-features"' in line]
    assert dlq and dlq[0] > 0, final


def test_sigterm_finishes_the_batch_in_flight_then_stops(runs: Runs) -> None:
    assert runs.first_rc == 0, runs.first.stderr_path.read_text()[-3000:]
    events = runs.first.events()
    requested = next(e for e in events if e.get("event") == "stop_requested")
    ended = next(e for e in events if e.get("event") == "stream_ended")
    assert requested["reason"] == "SIGTERM" and ended["graceful"] is True and ended["why"] == "stop"
    # Every batch the first run planned was committed: nothing is replayed at the restart.
    assert runs.in_flight is not None
    assert max(runs.offsets_after_first) == runs.in_flight
    assert runs.commits_after_first == runs.offsets_after_first
    progress = {e["batch_id"]: e for e in events if e.get("event") == "batch_progress"
                and e.get("query") == f"{runs.spec.name}-features"}
    assert runs.in_flight in progress
    stop_latency = iso_seconds(ended["ts"]) - iso_seconds(requested["ts"])
    assert stop_latency <= TRIGGER_S + progress[runs.in_flight]["duration_s"] + 5.0, stop_latency
    lineage = [e for e in runs.first.events() if e.get("event") == "query_stopped"]
    assert lineage and all(e["graceful"] for e in lineage)


@pytest.mark.clock  # the online TTL and the job's future-event bound compare event times with now
def test_restart_continues_without_loss(runs: Runs) -> None:
    assert runs.second_rc == 0, runs.second.stderr_path.read_text()[-3000:]
    features = [e for e in runs.second.events() if e.get("event") == "batch_progress"
                and e.get("query") == f"{runs.spec.name}-features"]
    assert min(e["batch_id"] for e in features) == runs.in_flight + 1
    expected, missing, wrong = compare_online(runs.spec, runs.events)
    assert expected == 40
    assert missing == [] and wrong == [], (missing, wrong[:3])
    dlq = pq.read_table(runs.work / "dlq" / runs.spec.name / "events").to_pandas()
    assert len(dlq) == runs.malformed


def test_json_logs_carry_query_and_batch_ids(runs: Runs) -> None:
    for job in (runs.first, runs.second):
        progress = [e for e in job.events() if e.get("event") == "batch_progress"]
        assert progress and all(e["query_id"] and e["run_id"] and isinstance(e["batch_id"], int) for e in progress)
        writes = [e for e in job.events() if e.get("event") == "online_store_batch"]
        assert writes and all(isinstance(e["batch_id"], int) for e in writes)


def test_lineage_events(runs: Runs) -> None:
    import json

    events = [json.loads(line) for line in runs.lineage_file.read_text().splitlines()]
    by_run: dict[str, list[str]] = {}
    for event in events:
        by_run.setdefault(event["run"]["runId"], []).append(event["eventType"])
    # Runs 1 and 2 completed; run 3 failed its configuration check after START.
    assert sorted(map(tuple, by_run.values())) == [("START", "COMPLETE"), ("START", "COMPLETE"), ("START", "FAIL")]
    start = events[0]
    assert start["job"]["name"] == f"stream.{runs.spec.name}"
    assert start["job"]["facets"]["jobType"]["processingType"] == "STREAMING"
    assert start["inputs"][0]["name"] == runs.spec.source.topic
    assert start["outputs"][0]["name"] == f"feature-group/{runs.spec.online_store.feature_group_name}"


def test_changed_shuffle_partitions_exit_2(runs: Runs) -> None:
    assert runs.third_rc == 2
    stderr = runs.third.stderr_path.read_text()
    line = next(line for line in stderr.splitlines() if line.startswith("featurestream: config error:"))
    assert "profile-changed.yaml: spark.shuffle_partitions: is 3 but the checkpoint" in line
    assert "made with 2" in line


def test_no_secret_in_any_log_or_file(runs: Runs) -> None:
    leaks = []
    for path in runs.work.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        leaks += [(str(path), secret[:12]) for secret in runs.secrets if secret.encode() in data]
    assert leaks == []
    # And the job did use them: the Kafka client was configured with the secret options.
    assert any("sasl.jaas.config = [hidden]" in (runs.work / f"run{i}" / "stderr.log").read_text()
               or "sasl.jaas.config" in (runs.work / f"run{i}" / "stderr.log").read_text() for i in (1, 2))
