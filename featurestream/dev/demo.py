"""`make demo`: real events through a real Kafka broker and Spark into the Feature Store online store.

Starts the services it needs (and later stops only those), creates the feature group, produces
about a minute of card payments in real time while the streaming job runs, then reads every card
back with GetRecord and prints it next to an independent computation. Exit 0 only if all match.
While it streams, the job's Prometheus metrics are served (`featurestream.ops.attach`); the demo
prints the URL (`metrics: http://127.0.0.1:PORT/metrics`). Before it stops the stack it has the
emulator write its offline queue, reads the group's offline rows back from the local S3 and
prints their count (exit 1 if there are none), and exits 1 if the emulator logged an ERROR line
during the run.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3

from featurestream.config import load_feature_group, load_profile
from featurestream.config.feature_group import with_transport
from featurestream.connectors.provisioning import ensure_feature_group
from featurestream.dev.generator import GeneratorSettings, encode, generate_events, source_producer
from featurestream.dev.reference import expected_records
from featurestream.io.jars import project_root

SERVICES = ["kafka", "s3", "feature-store"]
EVENTS_PER_SECOND = 50.0
KINESIS_EVENTS_PER_SECOND = 20.0
SECONDS = 55
ENTITIES = 40


def _print_table(rows: list[tuple[str, str, str, str, str, str, str]]) -> None:
    header = ("card_id", "event_time (as of)", "txn_count_5m", "expected", "amount_sum_5m", "expected", "match")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))


def run(argv: list[str] | None = None) -> int:
    from featurestream.dev.stack import manager

    parser = argparse.ArgumentParser(prog="featurestream.dev.demo")
    parser.add_argument("--source", choices=("kafka", "kinesis"), default="kafka")
    parser.add_argument("--seconds", type=int, default=SECONDS, help="how long events are produced (event time too)")
    args = parser.parse_args(argv)
    if args.seconds < 10:
        parser.error("--seconds must be at least 10")
    services = [*SERVICES, "kinesis"] if args.source == "kinesis" else SERVICES
    root = project_root()
    os.chdir(root)
    already = {s.name for s in manager.status() if s.healthy}
    emulator_log = next(s.log_path for s in manager.status(["feature-store"]))
    log_start = emulator_log.stat().st_size if emulator_log.exists() else 0
    print(f"starting the local stack: {', '.join(services)} ...", flush=True)
    manager.up(services)
    try:
        os.environ.update(manager.env())
        code = _demo(root, args.source, args.seconds)
        errors = _error_lines(emulator_log, log_start)
        print(f"emulator log ({emulator_log}): {len(errors)} ERROR lines during the demo", flush=True)
        for line in errors[:5]:
            print(f"  {line}")
        return code or (1 if errors else 0)
    finally:
        started = [name for name in services if name not in already]
        if started:
            print(f"stopping what the demo started: {', '.join(started)}", flush=True)
            manager.down(started)


def _error_lines(log_path: Path, start: int) -> list[str]:
    """The ERROR lines the emulator wrote from byte `start` on (its format: `time LEVEL logger: message`)."""
    if not log_path.exists():
        return []
    with log_path.open("rb") as handle:
        handle.seek(start if log_path.stat().st_size >= start else 0)
        text = handle.read().decode("utf-8", "replace")
    return [line for line in text.splitlines() if " ERROR " in line]


def _offline_rows(group: str) -> tuple[int, str]:
    """(rows, location) of the group's offline store in the local S3, after the emulator's flush.

    The emulator writes its offline queue every few seconds; asking it to flush now makes the
    count deterministic. The rows are read back from S3 (Parquet), not taken from the emulator.
    """
    import pyarrow.parquet as pq

    endpoint = os.environ["AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME"].rstrip("/")
    request = urllib.request.Request(f"{endpoint}/_emulator/flush", method="POST", data=b"")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - the local emulator
            json.loads(response.read())
    except urllib.error.HTTPError as exc:  # 503: a group's offline store is blocked (its reason in the body)
        print(f"offline flush: {exc.code} {exc.read().decode(errors='replace')[:300]}", flush=True)
    description = boto3.client("sagemaker").describe_feature_group(FeatureGroupName=group)
    uri = description["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3")
    rows = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith(".parquet"):
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                rows += pq.read_metadata(io.BytesIO(body)).num_rows
    return rows, uri


def _attach_ops(spark: Any, profile: Any) -> Any:
    """The metrics endpoint on the profile's port, or on any free port if that one is taken."""
    from featurestream.ops.attach import attach
    from featurestream.ops.server import MetricsServerError

    try:
        return attach(spark, profile)
    except MetricsServerError as exc:
        print(f"{exc}; serving metrics on a free port instead", flush=True)
        metrics = profile.metrics.model_copy(update={"port": 0})
        return attach(spark, profile.model_copy(update={"metrics": metrics}))


def _demo(root: Path, transport: str, seconds: int) -> int:
    from featurestream.engine.pipeline import start_stream
    from featurestream.spark import local_session

    run_id = uuid.uuid4().hex[:6]
    spec = load_feature_group(root / "conf/feature_groups/card_activity.yaml")
    # A topic (or stream) per demo run, so the numbers below are about this run's events only.
    spec = spec.model_copy(update={"source": spec.source.model_copy(update={"topic": f"payments-demo-{run_id}"})})
    spec = with_transport(spec, "kinesis" if transport == "kinesis" else "kafka")
    # kinesis-local takes a few hundred records/s on a busy machine: a gentler pace there.
    rate = EVENTS_PER_SECOND if transport == "kafka" else KINESIS_EVENTS_PER_SECOND
    work = Path(tempfile.mkdtemp(prefix="featurestream-demo-"))
    profile = load_profile("local").model_copy(update={
        "checkpoint_root": str(work / "checkpoints"), "dlq_path": str(work / "dlq"),
    })
    description = ensure_feature_group(boto3.client("sagemaker"), spec, profile)
    print(f"feature group {description['FeatureGroupName']}: {description['FeatureGroupStatus']}")

    settings = GeneratorSettings(entities=ENTITIES, seed=42, events_per_second=rate,
                                 start=datetime.now(UTC), malformed_rate=0.01)
    events = generate_events(int(rate * seconds), settings)
    records = list(encode(events, settings))
    logging.basicConfig(level=logging.WARNING)
    send, where = source_producer(spec, profile)
    producer = threading.Thread(target=send, args=(records, rate), daemon=True)
    quiet = profile.spark.model_copy(update={"conf": {**profile.spark.conf, "spark.ui.showConsoleProgress": "false"}})
    spark = local_session("featurestream-demo", quiet)
    ops = _attach_ops(spark, profile)
    try:
        print(f"metrics: {ops.url}", flush=True)
        print(f"producing {len(events)} events over {seconds}s to {where}; streaming ...", flush=True)
        producer.start()
        queries = start_stream(spark, spec, profile)
        ops.watch(queries)
        started = time.monotonic()
        while producer.is_alive():
            producer.join(timeout=10)
            progress = queries.features.recentProgress
            rows = sum(p.get("numInputRows", 0) for p in progress)
            print(f"  t+{time.monotonic() - started:4.0f}s  {len(progress)} micro-batches, {rows} events aggregated",
                  flush=True)
        for query in queries.all():
            query.processAllAvailable()
            query.stop()
    finally:
        ops.close()
        spark.stop()

    expected = expected_records(events, spec.entity.key, spec.event_time.field, "amount",
                                spec.windows.tile_ms, 5 * 60_000)
    runtime = boto3.client("sagemaker-featurestore-runtime")
    rows, matches = [], 0
    for entity in sorted(expected):
        want = expected[entity]
        record = runtime.get_record(FeatureGroupName=spec.online_store.feature_group_name,
                                    RecordIdentifierValueAsString=entity).get("Record", [])
        got = {f["FeatureName"]: f["ValueAsString"] for f in record}
        as_of = want.as_of.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        ok = (got.get(spec.event_time.field) == as_of and got.get("txn_count_5m") == str(want.count)
              and abs(float(got.get("amount_sum_5m", "nan")) - want.total) < 1e-6 * max(1.0, want.total))
        matches += ok
        rows.append((entity, got.get(spec.event_time.field, "-"), got.get("txn_count_5m", "-"), str(want.count),
                     f"{float(got.get('amount_sum_5m', 'nan')):.2f}", f"{want.total:.2f}", "yes" if ok else "NO"))
    print()
    _print_table(rows)
    print(f"\n{matches} of {len(expected)} entities match the independent computation")
    offline, where = _offline_rows(spec.online_store.feature_group_name)
    print(f"offline store: {offline} rows read back from {where}", flush=True)
    return 0 if matches == len(expected) and len(expected) >= 20 and offline > 0 else 1


if __name__ == "__main__":
    sys.exit(run())
