"""Kinesis source throughput, two pairs measured in one run on a private stack.

1. "vs bare GetRecords loop": our Spark source into a `noop` sink vs a bare boto3 GetRecords loop
   draining the same shards of the same kinesis-local, alternating, several rounds; medians
   compared. The bare loop is the emulator's ceiling: one client asking for 10,000 records per
   call with nothing else to do.
2. "vs Kafka path" (for information): the full feature job (`featurestream.engine.pipeline.start_stream`,
   availableNow, online store on the Feature Store emulator, DLQ) over the same generated events
   once from a Kinesis stream and once from a Kafka topic (as many shards as partitions); a fresh
   feature group and checkpoint per run, sides alternating (order swapped each round); time from
   query start to availableNow termination of both queries; medians compared.

The stack (kinesis-local, Kafka, moto S3, the Feature Store emulator) runs on fixed 26xxx ports
with its own state dir, next to any stack on the defaults, and is stopped again.
Writes bench/results/kinesis.json (format of bench/common.py).

    .venv/bin/python bench/kinesis_bench.py [--records N] [--shards S] [--rounds R]
                                            [--job-events N] [--job-rounds R]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Pair, write_results  # noqa: E402
from featurestream.config.feature_group import FeatureGroupSpec  # noqa: E402
from featurestream.config.profile import EnvironmentProfile  # noqa: E402
from featurestream.connectors.kinesis import builtin_jar_path, read_kinesis  # noqa: E402
from featurestream.dev.stack import manager  # noqa: E402
from featurestream.dev.stack.config import DEFAULT_PORTS, StackConfig  # noqa: E402

PUT_BATCH = 500
RECORD_BYTES = 200
SERVICES = ["kinesis", "kafka", "s3", "feature-store"]
# Fixed, below 30000 and away from the defaults (1xxxx), so other engineers' stacks are untouched.
BENCH_PORTS = {"kafka": 26092, "kafka-controller": 26093, "kinesis": 26567, "kinesis-tls": 26568,
               "s3": 26500, "postgres": 26432, "feature-store": 26080}
FEATURE_GROUP = ROOT / "conf/feature_groups/card_activity.yaml"


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _private_stack(state_dir: Path) -> StackConfig:
    """The services on BENCH_PORTS with their own state dir, next to any stack on the defaults."""
    ports = dict(DEFAULT_PORTS)
    ports.update(BENCH_PORTS)
    return StackConfig(state_dir=state_dir, root=ROOT, ports=ports)


def _fill(client: Any, stream: str, records: int) -> float:
    """Puts `records` records of RECORD_BYTES from one thread; returns records/s."""
    payload = b"x" * (RECORD_BYTES - 12)
    started = time.perf_counter()
    for start in range(0, records, PUT_BATCH):
        entries = [{"PartitionKey": f"k{n}", "Data": b"%011d|" % n + payload}
                   for n in range(start, min(start + PUT_BATCH, records))]
        response = client.put_records(StreamName=stream, Records=entries)
        if response.get("FailedRecordCount"):
            raise RuntimeError(f"{response['FailedRecordCount']} records refused")
    return records / (time.perf_counter() - started)


def bare_loop(client: Any, stream: str) -> tuple[int, float]:
    """Drains every shard from TRIM_HORIZON with GetRecords(Limit=10000); (records, seconds)."""
    started = time.perf_counter()
    total = 0
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        iterator = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = client.get_records(ShardIterator=iterator, Limit=10_000)
            total += len(page["Records"])
            if page.get("MillisBehindLatest", 0) == 0 and len(page["Records"]) < 10_000:
                break
            iterator = page.get("NextShardIterator")
    return total, time.perf_counter() - started


def our_source(spark: Any, stream: str, endpoint: str, checkpoint: Path) -> tuple[int, float]:
    """Drains the stream with our source into `noop` under availableNow; (records, seconds)."""
    df = read_kinesis(spark, {"stream": stream, "endpoint_url": endpoint, "starting_position": "TRIM_HORIZON"})
    started = time.perf_counter()
    query = (df.writeStream.format("noop").option("checkpointLocation", str(checkpoint))
             .trigger(availableNow=True).start())
    query.awaitTermination()
    elapsed = time.perf_counter() - started
    if query.exception() is not None:
        raise RuntimeError(f"query failed: {query.exception()}")
    return sum(p["numInputRows"] for p in query.recentProgress), elapsed


def _run_job(spark: Any, spec: FeatureGroupSpec, profile: EnvironmentProfile, work: Path) -> tuple[int, float, int]:
    """The whole feature job under availableNow on a fresh group and checkpoint.

    Returns (input records of the features query, seconds from query start to the termination
    of both queries, records handed to the online store).
    """
    from featurestream.connectors.provisioning import ensure_feature_group
    from featurestream.engine.pipeline import start_stream

    label = uuid.uuid4().hex[:6]
    side = spec.source.type
    spec = spec.model_copy(update={"online_store": spec.online_store.model_copy(
        update={"feature_group_name": f"bench-{side}-{label}"})})
    profile = profile.model_copy(update={"checkpoint_root": str(work / f"ck-{side}-{label}"),
                                         "dlq_path": str(work / f"dlq-{side}-{label}")})
    ensure_feature_group(boto3.client("sagemaker"), spec, profile)  # not timed: control plane
    started = time.perf_counter()
    queries = start_stream(spark, spec, profile, available_now=True)
    for query in queries.all():
        query.awaitTermination()
    elapsed = time.perf_counter() - started
    for query in queries.all():
        if query.exception() is not None:
            raise RuntimeError(f"{side} feature job failed: {query.exception()}")
    rows = sum(int(p["numInputRows"]) for p in queries.features.recentProgress)
    return rows, elapsed, queries.metrics.records


def job_pair(spark: Any, cfg: StackConfig, work: Path, events: int, shards: int,
             rounds: int) -> tuple[Pair, dict[str, Any]]:
    """Feature job from Kinesis vs from Kafka on the same generated events; (pair, checks)."""
    from featurestream.config import load_feature_group, load_profile
    from featurestream.config.feature_group import with_transport
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

    settings = GeneratorSettings(entities=1000, seed=11, events_per_second=50.0,
                                 start=recent_start(events / 50.0), malformed_rate=0.01)
    records = list(encode(generate_events(events, settings), settings))
    name = f"bench-job-{uuid.uuid4().hex[:8]}"
    kafka_spec = load_feature_group(FEATURE_GROUP)
    kafka_spec = kafka_spec.model_copy(update={"source": kafka_spec.source.model_copy(update={"topic": name})})
    kinesis_spec = with_transport(kafka_spec, "kinesis")
    bootstrap = manager.env(cfg)["FEATURESTREAM_KAFKA_BOOTSTRAP"]
    profile = load_profile("local")
    profile = profile.model_copy(update={
        "kafka": profile.kafka.model_copy(update={"bootstrap_servers": bootstrap})})

    ensure_topic(bootstrap, name, partitions=shards)
    started = time.perf_counter()
    produce_kafka(records, bootstrap, name)
    kafka_put = len(records) / (time.perf_counter() - started)
    ensure_stream(name, shards=shards, region=cfg.region)
    started = time.perf_counter()
    produce_kinesis(records, name, region=cfg.region)
    kinesis_put = len(records) / (time.perf_counter() - started)
    print(f"job: {len(records):,} records ({events:,} events) on topic and stream {name}", flush=True)

    rates: dict[str, list[float]] = {"kinesis": [], "kafka": []}
    counts: dict[str, list[int]] = {"kinesis": [], "kafka": []}
    written: dict[str, list[int]] = {"kinesis": [], "kafka": []}
    specs = {"kinesis": kinesis_spec, "kafka": kafka_spec}
    for round_no in range(rounds):
        # swapped each round so neither side always runs first (on a warmer JVM)
        for side in (("kinesis", "kafka") if round_no % 2 == 0 else ("kafka", "kinesis")):
            rows, seconds, out = _run_job(spark, specs[side], profile, work)
            counts[side].append(rows)
            rates[side].append(rows / seconds)
            written[side].append(out)
            print(f"job round {round_no} {side}: {rows:,} records in {seconds:.1f}s -> {rows / seconds:,.0f}/s, "
                  f"{out:,} online records", flush=True)

    pair = Pair("vs Kafka path", statistics.median(rates["kinesis"]), statistics.median(rates["kafka"]), "events/s")
    checks = {
        "job_every_run_read_all_records": all(c == len(records) for c in counts["kinesis"] + counts["kafka"]),
        "job_same_online_records_both_sides": len(set(written["kinesis"] + written["kafka"])) == 1,
        "job_kinesis_events_per_s_by_round": [round(r) for r in rates["kinesis"]],
        "job_kafka_events_per_s_by_round": [round(r) for r in rates["kafka"]],
        "job_online_records_per_run": written["kinesis"][0],
        "job_input_records": len(records),
        "job_kafka_produce_records_per_s": round(kafka_put),
        "job_kinesis_produce_records_per_s": round(kinesis_put),
        "job_seconds_include": "start_stream to availableNow termination of the features and DLQ queries "
                               "(planning, reads, tile engine, online-store writes, DLQ parquet)",
    }
    return pair, checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--job-events", type=int, default=20_000)
    parser.add_argument("--job-rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if not builtin_jar_path().is_file():
        print(f"{builtin_jar_path()} is missing: run `make kinesis-source`", file=sys.stderr)
        return 1
    busy = [f"{name}={port}" for name, port in BENCH_PORTS.items() if not _port_free(port)]
    if busy:
        print(f"ports in use: {', '.join(busy)} (another bench running?)", file=sys.stderr)
        return 1

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    work = Path(tempfile.mkdtemp(prefix="kinesis-bench-"))
    cfg = _private_stack(work / "state")
    try:
        manager.up(SERVICES, cfg)
        # before the JVM starts: its Python workers read the endpoints like any boto3 user
        os.environ.update(manager.env(cfg))
        endpoint = cfg.url("kinesis")
        client = boto3.client("kinesis", endpoint_url=endpoint, region_name=cfg.region)
        stream = f"bench-{uuid.uuid4().hex[:8]}"
        client.create_stream(StreamName=stream, ShardCount=args.shards)
        client.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.2})
        put_rate = _fill(client, stream, args.records)

        from featurestream.config.profile import SparkSpec
        from featurestream.spark import local_session
        spark = local_session("kinesis-bench", SparkSpec(master="local[2]", shuffle_partitions=2))
        # warm-up: JVM classes, the SDK client, Spark's streaming machinery
        our_source(spark, stream, endpoint, work / "warm")
        ours_rates, bare_rates, ours_counts, bare_counts = [], [], [], []
        for round_no in range(args.rounds):
            count, seconds = bare_loop(client, stream)
            bare_counts.append(count)
            bare_rates.append(count / seconds)
            count, seconds = our_source(spark, stream, endpoint, work / f"ck-{round_no}")
            ours_counts.append(count)
            ours_rates.append(count / seconds)
            print(f"round {round_no}: bare {bare_rates[-1]:,.0f} rec/s, ours {ours_rates[-1]:,.0f} rec/s")
        kafka_pair, job_checks = job_pair(spark, cfg, work, args.job_events, args.shards, args.job_rounds)
        spark.stop()
    finally:
        manager.down(SERVICES, cfg)
        shutil.rmtree(work, ignore_errors=True)

    ours_rates.sort()
    bare_rates.sort()
    pairs = [Pair("vs bare GetRecords loop", ours_rates[len(ours_rates) // 2], bare_rates[len(bare_rates) // 2],
                  "records/s"), kafka_pair]
    checks = {
        "every_round_read_all_records": all(c == args.records for c in ours_counts + bare_counts),
        "ours_records_per_s_by_round": [round(r) for r in ours_rates],
        "bare_records_per_s_by_round": [round(r) for r in bare_rates],
        "emulator_put_records_per_s": round(put_rate),
        "ours_seconds_include": "query start to availableNow termination (planning, probes, noop write)",
        **job_checks,
    }
    params = {"records": args.records, "shards": args.shards, "rounds": args.rounds, "record_bytes": RECORD_BYTES,
              "spark_master": "local[2]", "max_records_per_shard_per_batch": 100_000, "get_records_limit": 10_000,
              "job_events": args.job_events, "job_rounds": args.job_rounds,
              "job_feature_group": FEATURE_GROUP.relative_to(ROOT).as_posix(), "job_kafka_partitions": args.shards,
              "job_kinesis_shards": args.shards, "job_trigger": "availableNow, no per-trigger cap on either side"}
    write_results("kinesis", params, pairs, checks)
    ok = checks["every_round_read_all_records"] and checks["job_every_run_read_all_records"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
