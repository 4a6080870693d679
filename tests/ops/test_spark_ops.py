"""The operations pieces on a real Spark session: graceful stop of a batch in flight, the listener's
metrics (observed counts, event-time stats), and the checkpoint checks on local and s3a:// paths."""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from prometheus_client import CollectorRegistry

from featurestream.errors import ConfigError
from featurestream.io import s3a
from featurestream.ops import shutdown
from featurestream.ops.checkpoints import check_fixed_settings, checkpoints_under, recorded_conf
from featurestream.ops.listener import OpsListener
from featurestream.ops.metrics import JobMetrics, counted
from tests.ops.test_metrics import scrape


def write_events(folder: Path, name: str, good: int, bad: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"k": f"e{i % 5}", "t": f"2026-11-26T10:00:{i % 60:02d}Z"}) for i in range(good)]
    lines += ["{not json"] * bad
    (folder / f"{name}.json").write_text("\n".join(lines) + "\n")


def parsed(spark: Any, folder: Path) -> Any:
    from pyspark.sql import functions as F

    text = spark.readStream.text(str(folder))
    row = F.from_json("value", "k string, t timestamp")
    return text.select(row.alias("e"), "value").select("e.k", "e.t", "value")


def committed(checkpoint: Path) -> set[int]:
    return {int(p.name) for p in (checkpoint / "commits").iterdir() if p.name.isdigit()}


def run_slow_query(spark: Any, tmp_path: Path) -> tuple[Any, threading.Event, threading.Event, list[int], Path]:
    """A query whose every batch takes 3 s in foreachBatch; returns once the first batch is in flight."""
    started, finished, batches = threading.Event(), threading.Event(), []

    def body(frame: Any, batch_id: int) -> None:
        started.set()
        frame.count()
        time.sleep(3)
        batches.append(batch_id)
        finished.set()

    checkpoint = tmp_path / "cp"
    query = (spark.readStream.format("rate").option("rowsPerSecond", 20).load()
             .writeStream.foreachBatch(body).option("checkpointLocation", str(checkpoint))
             .trigger(processingTime="1 second").start())
    assert started.wait(120), "no batch started"
    return query, started, finished, batches, checkpoint


def test_graceful_stop_finishes_the_batch_in_flight(spark: Any, tmp_path: Path) -> None:
    query, _, finished, batches, checkpoint = run_slow_query(spark, tmp_path)
    assert not finished.is_set()
    began = time.monotonic()
    (result,) = shutdown.stop_after_current_batch([query], timeout_s=120)
    elapsed = time.monotonic() - began
    assert not query.isActive and query.exception() is None
    assert result.graceful and finished.is_set()
    # The batch in flight ran to its commit; no later batch started.
    assert committed(checkpoint) == set(batches) == {batches[0]}
    assert result.last_batch_id == batches[0]
    assert elapsed < 60


def test_fallback_stops_between_triggers(spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutdown, "_mark_terminated", lambda query: False)
    query, _, finished, batches, checkpoint = run_slow_query(spark, tmp_path)
    began = time.monotonic()
    shutdown.stop_after_current_batch([query], timeout_s=120)
    assert not query.isActive and finished.is_set()
    # The batch in flight committed; these batches run back to back, so the next one may have
    # begun and been interrupted (it is replayed at the next start).
    assert batches[0] in committed(checkpoint)
    assert time.monotonic() - began < 60


def test_stop_signal_from_a_stop_file(tmp_path: Path) -> None:
    marker = tmp_path / "STOP"
    signal = shutdown.StopSignal(str(marker), poll_s=0.0)
    signal.check_file_with(lambda uri: Path(uri).exists())
    assert not signal.wait(0.01)
    marker.touch()
    assert signal.wait(0.01) and signal.reason == f"stop file {marker}"


def _count_callback_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """py4j name look-ups (`jvm.a.b`, each a class search over every jar) made off the main thread:
    from Spark's calls into Python (the listener)."""
    from py4j import clientserver

    found: list[str] = []
    original = clientserver.ClientServerConnection.send_command

    def counted_send(connection: Any, command: str) -> Any:
        if command.startswith("r\nu\n") and threading.current_thread() is not threading.main_thread():
            found.append(command.split("\n")[2])
        return original(connection, command)

    monkeypatch.setattr(clientserver.ClientServerConnection, "send_command", counted_send)
    return found


def test_listener_counts_observed_rows_and_event_times(spark: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from pyspark.sql import functions as F

    lookups = _count_callback_lookups(monkeypatch)
    source = tmp_path / "in"
    write_events(source, "a", good=40, bad=7)
    metrics = JobMetrics(CollectorRegistry())
    listener = OpsListener(metrics)
    spark.streams.addListener(listener)
    try:
        frame = parsed(spark, source)
        bad = frame.where(F.col("k").isNull()).transform(counted("dlq"))
        good = (frame.where(F.col("k").isNotNull()).withWatermark("t", "1 minute")
                .groupBy("k").agg(F.count(F.lit(1)).alias("n")))
        name = f"ops-good-{uuid.uuid4().hex[:6]}"
        queries = [
            bad.writeStream.queryName(f"ops-dlq-{uuid.uuid4().hex[:6]}").format("noop")
            .option("checkpointLocation", str(tmp_path / "cp-bad")).trigger(availableNow=True).start(),
            good.writeStream.queryName(name).outputMode("update").format("noop")
            .option("checkpointLocation", str(tmp_path / "cp-good")).trigger(availableNow=True).start(),
        ]
        for query in queries:
            query.awaitTermination()
            assert query.exception() is None
        dlq_key = ("featurestream_events_total", (("outcome", "dlq"), ("query", queries[0].name)))
        rows_key = ("featurestream_input_rows_total", (("query", name),))
        # The listener bus is asynchronous: wait for both queries' progress to arrive.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (scrape(metrics.registry).get(dlq_key) != 7
                                               or scrape(metrics.registry).get(rows_key) != 47):
            time.sleep(0.1)
        values = scrape(metrics.registry)
        assert values[dlq_key] == 7
        assert values[rows_key] == 47
        assert values[("featurestream_state_rows", (("query", name),))] == 5
        # Every event time of the input lies in 10:00:00..10:00:59, so the freshness is at least
        # the time since 10:00:59 and at most the time since 10:00:00, as of the scrape.
        assert values[("featurestream_freshness_seconds_count", ())] >= 40
        # Progress reaches the listener as JSON: pyspark's wrapper iterated Java maps from Python
        # (~120 look-ups a progress event, a Java exception ending each iteration).
        assert len(lookups) < 20, sorted(set(lookups))
    finally:
        spark.streams.removeListener(listener)


def run_aggregation(spark: Any, source: Path, checkpoint: str) -> None:
    from pyspark.sql import functions as F

    query = (parsed(spark, source).where(F.col("k").isNotNull()).withWatermark("t", "1 minute")
             .groupBy("k").agg(F.count(F.lit(1)).alias("n"))
             .writeStream.outputMode("update").format("noop").option("checkpointLocation", checkpoint)
             .trigger(availableNow=True).start())
    query.awaitTermination()
    assert query.exception() is None


def assert_partitions_checked(spark: Any, root: str) -> None:
    (found,) = checkpoints_under(spark, root)
    recorded = recorded_conf(spark, found)
    assert recorded is not None and recorded.conf["spark.sql.shuffle.partitions"] == "2"
    check_fixed_settings(spark, [root], 2, "conf/environments/x.yaml")
    with pytest.raises(ConfigError) as info:
        check_fixed_settings(spark, [root], 8, "conf/environments/x.yaml")
    assert info.value.field == "spark.shuffle_partitions"
    assert "is 8 but the checkpoint" in info.value.reason and "made with 2" in info.value.reason
    assert str(info.value).startswith("conf/environments/x.yaml: spark.shuffle_partitions: ")


def test_changed_shuffle_partitions_refused_local(spark: Any, tmp_path: Path) -> None:
    source = tmp_path / "in"
    write_events(source, "a", good=10, bad=0)
    root = tmp_path / "checkpoints" / "card_activity"
    check_fixed_settings(spark, [str(root)], 8, "x.yaml")  # no checkpoint yet: anything goes
    run_aggregation(spark, source, str(root / "features"))
    assert_partitions_checked(spark, str(root))


def test_checkpoint_on_s3a(spark: Any, stack_env: dict[str, str], tmp_path: Path) -> None:
    """RocksDB state with changelog checkpointing on s3a:// (moto), restarted, then the check."""
    bucket = f"ops-checkpoints-{uuid.uuid4().hex[:8]}"
    endpoint = s3a.endpoint_from_env()
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    s3a.configure_session(spark, endpoint, "us-east-1", [bucket])
    source = tmp_path / "in"
    write_events(source, "a", good=10, bad=0)
    root = f"s3a://{bucket}/checkpoints/card_activity"
    run_aggregation(spark, source, f"{root}/features")
    write_events(source, "b", good=10, bad=0)
    run_aggregation(spark, source, f"{root}/features")  # restart from the s3a checkpoint
    keys = {o["Key"] for o in boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=bucket)["Contents"]}
    assert "checkpoints/card_activity/features/commits/1" in keys
    assert any(".changelog" in key for key in keys)
    assert_partitions_checked(spark, root)


def test_attach_serves_the_metrics_of_any_query(spark: Any, tmp_path: Path) -> None:
    from urllib.request import urlopen

    from featurestream.config.profile import EnvironmentProfile
    from featurestream.ops.attach import attach

    profile = EnvironmentProfile.model_validate({
        "name": "t", "kafka": {"bootstrap_servers": "unused:1"}, "checkpoint_root": str(tmp_path / "cp"),
        "dlq_path": str(tmp_path / "dlq"), "metrics": {"port": 0, "textfile": str(tmp_path / "final.prom")}})
    source = tmp_path / "in"
    write_events(source, "a", good=12, bad=0)
    ops = attach(spark, profile)
    try:
        assert ops.url is not None and ops.url.startswith("http://127.0.0.1:")
        name = f"ops-attach-{uuid.uuid4().hex[:6]}"
        query = (parsed(spark, source).writeStream.queryName(name).format("noop")
                 .option("checkpointLocation", str(tmp_path / "cp")).trigger(availableNow=True).start())
        query.awaitTermination()
        wanted = f'featurestream_input_rows_total{{query="{name}"}} 12.0'
        deadline = time.monotonic() + 60
        body = ""
        while time.monotonic() < deadline and wanted not in body:
            body = urlopen(ops.url, timeout=5).read().decode()
            time.sleep(0.1)
        assert wanted in body
    finally:
        ops.close()
    assert wanted in (tmp_path / "final.prom").read_text()
