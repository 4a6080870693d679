"""The streaming job as shipped, and its components, against baselines on the same machine and topic.

Pairs (`--pairs`, default shipped,sparse,groups,sketch):
- shipped: `featurestream stream` (its own `run`, in this process and Spark session: features and
  DLQ in one query per source, bench/shipped_job.py) on the dense shape below, vs the plain
  Kafka → from_json → noop query;
- sparse: the same job on `--sparse-events` events over `--sparse-entities` Zipf-distributed
  entities (P(i) ∝ 1/(i+10)^0.8: a busy head, most entities 1-3 events) in event-time order,
  `--sparse-per-batch` per micro-batch, vs a bare boto3 thread pool (8 threads, BatchWriteRecord
  of 25) writing the same number of records (one per entity and micro-batch) of the same shape to
  the same emulator: the writes are the floor of this shape;
- groups: the job with 4 copies of the group on the topic (one query, one read) vs with 1 group;
- sketch (sketch-state's pair) and features (a component: the features query alone, no DLQ):
  as described below.

One run, `local[2]`, a real Kafka broker (the stack's, started if needed and stopped after) and a
private Feature Store emulator:

- data: `--entities` cards x `--events-per-entity` events per micro-batch x `--batches`
  micro-batches, in event-time order (10 minutes of event time per micro-batch), written to a
  2-partition topic by Spark's Kafka writer;
- baseline: `readStream kafka → from_json → noop`, availableNow, `maxOffsetsPerTrigger` = one
  micro-batch;
- ours: the features query of `featurestream.engine.pipeline` (parse, transforms, the tile engine with
  3 windows x 5 aggregations, records written to the emulator's online store, late sink),
  availableNow with the same trigger size; a fresh checkpoint and feature group per run;
- sketch group (pair "sketch group vs ..."): the same job with a group of sketch features over the
  same 3 windows: two approx_percentile features (p50/p95/p99 of two columns), one
  approx_count_distinct and one top_k (k=3) of the merchant, default sketch sizes; a card's
  merchant changes with each of its events (200 in turn): the distinct counts stay in their exact
  range (<= 256), the 1h and 24h top-k merges hold more values than the sketch's 48 and purge;
- first both sides run once on a separate warm-up topic (`--warmup-events`, one micro-batch, not
  measured; by default as large as a measured micro-batch): JIT compilation, Python worker start-up
  (the online-store writer) and connections are one-off costs of a long-running job, and would
  otherwise land on whichever side runs first. A warm-up of 200,000 events (20 an entity) left the
  engine's larger methods (the sketch group's top-k and fold code) still compiling through the
  measured repeats: the sketch group's runs rose 57k → 70k → 73k events/s in one run, and its JIT
  threads took 5.5 → 3.2 → 1.8 CPU µs an event run after run (bench/sketch_cost.py);
- runs alternate baseline / ours `--repeats` times; each side's figure is its median events/s,
  time = the sum of every micro-batch's triggerExecution (ours includes its timer-only batches).
checks.writes_per_event = records the engine handed the online store ÷ input events.

    .venv/bin/python bench/stream_bench.py [--entities 10000] [--events-per-entity 100] [--batches 3]
        [--pairs shipped,sparse,groups,sketch,features] [--results-dir /tmp/somewhere]
    .venv/bin/python bench/stream_bench.py --small --results-dir /tmp/x   # a quick check that it runs

Only a run of every default pair at full size may write bench/results/stream.json: `--small` or a
part of the pairs without `--results-dir` stops (exit 2) before anything runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

for _key, _value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                     ("AWS_REGION", "us-east-1"), ("AWS_DEFAULT_REGION", "us-east-1"),
                     ("SPARK_LOCAL_IP", "127.0.0.1"), ("PYSPARK_PYTHON", sys.executable)):
    os.environ.setdefault(_key, _value)

import boto3  # noqa: E402

from bench.common import Pair, machine, write_results  # noqa: E402
from bench.shipped_job import (  # noqa: E402
    JobRun,
    bare_batch_write_loop,
    online_only,
    records_per_batch,
    run_job,
    write_profile,
    zipf_entities,
)
from featurestream.config import load_feature_group, load_profile  # noqa: E402
from featurestream.config.feature_group import FeatureGroupSpec  # noqa: E402
from featurestream.config.profile import EnvironmentProfile, SparkSpec  # noqa: E402
from featurestream.connectors.provisioning import ensure_feature_group  # noqa: E402
from featurestream.dev.feature_store import EmulatorProcess  # noqa: E402
from featurestream.engine.parsing import parse_events  # noqa: E402
from featurestream.engine.pipeline import start_features_query  # noqa: E402
from featurestream.engine.transforms import check_with_spark  # noqa: E402
from featurestream.spark import local_session  # noqa: E402

GROUP = """
entity: {key: card_id, type: string}
event_time: {field: event_time}
source:
  type: kafka
  topic: TOPIC
  format: json
  schema: {transaction_id: string, card_id: string, merchant_id: string, amount: double, currency: string,
           event_time: timestamp}
transforms:
  - filter: "amount > 0"
windows: {tile: 1m, allowed_lateness: 5m}
features:
  - {name: txn_count, agg: count, windows: [5m, 1h, 24h]}
  - {name: amount_sum, agg: sum, column: amount, windows: [5m, 1h, 24h]}
  - {name: amount_mean, agg: mean, column: amount, windows: [5m, 1h, 24h]}
  - {name: amount_max, agg: max, column: amount, windows: [5m, 1h, 24h]}
  - {name: amount_stddev, agg: stddev_pop, column: amount, windows: [5m, 1h, 24h]}
online_store: {feature_group_name: FGNAME, ttl: 7d}
"""
# Two percentile features, one distinct count and one top-k, each over the same 3 windows.
SKETCH_GROUP = """
entity: {key: card_id, type: string}
event_time: {field: event_time}
source:
  type: kafka
  topic: TOPIC
  format: json
  schema: {transaction_id: string, card_id: string, merchant_id: string, amount: double, currency: string,
           event_time: timestamp}
transforms:
  - filter: "amount > 0"
  - derive: {amount_cents: "cast(round(amount * 100) as bigint)"}
windows: {tile: 1m, allowed_lateness: 5m}
features:
  - {name: amount, agg: approx_percentile, column: amount, percentiles: [0.5, 0.95, 0.99], windows: [5m, 1h, 24h]}
  - {name: cents, agg: approx_percentile, column: amount_cents, percentiles: [0.5, 0.95, 0.99],
     windows: [5m, 1h, 24h]}
  - {name: merchants, agg: approx_count_distinct, column: merchant_id, windows: [5m, 1h, 24h]}
  - {name: merchant, agg: top_k, column: merchant_id, k: 3, windows: [5m, 1h, 24h]}
online_store: {feature_group_name: FGNAME, ttl: 7d}
"""
BATCH_SPAN_MS = 10 * 60_000
# shipped, sparse, groups: the job as users run it (bench/shipped_job.py); sketch: sketch-state's pair;
# features: a component (the features query alone, no DLQ), measured only when asked for.
PAIRS = ("shipped", "sparse", "groups", "sketch", "features")
DEFAULT_PAIRS = ("shipped", "sparse", "groups", "sketch")
GROUP_COPIES = 4


def produce(spark: Any, bootstrap: str, topic: str, entities: int, per_batch: int, batches: int) -> int:
    """Events in event-time order through one producer task, so offsets follow event time."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from pyspark.sql import functions as F

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        admin.close()
    total = per_batch * batches
    start_ms = (int(time.time() * 1000) // 60_000 - 60) * 60_000
    ts_ms = F.lit(start_ms) + F.floor(F.col("id") * (BATCH_SPAN_MS / per_batch))
    events = spark.range(total, numPartitions=1).select(
        F.concat(F.lit("card-"), (F.col("id") % entities).cast("string")).alias("card_id"),
        F.concat(F.lit("t"), F.col("id").cast("string")).alias("transaction_id"),
        # A card's merchants change from one of its events to the next (200 in turn).
        F.concat(F.lit("m-"), ((F.floor(F.col("id") / entities) * 31 + F.col("id")) % 200).cast("string"))
        .alias("merchant_id"),
        ((F.col("id") * 7919 % 100_000) / 100.0 + 0.5).alias("amount"),
        F.lit("EUR").alias("currency"),
        F.date_format(F.timestamp_millis(ts_ms), "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").alias("event_time"),
    )
    (events.select(F.col("card_id").alias("key"), F.to_json(F.struct(*events.columns)).alias("value"))
     .write.format("kafka").option("kafka.bootstrap.servers", bootstrap).option("topic", topic)
     .option("kafka.linger.ms", "20").option("kafka.batch.size", "262144").save())
    return total


def _elapsed_s(progress: list[dict[str, Any]]) -> tuple[float, int]:
    rows = sum(int(p["numInputRows"]) for p in progress)
    return sum(p["durationMs"].get("triggerExecution", 0) for p in progress) / 1000.0, rows


def run_baseline(spark: Any, spec: FeatureGroupSpec, bootstrap: str, per_batch: int, work: Path) -> float:
    from pyspark.sql import functions as F

    schema = spec.source.ddl()
    query = (
        spark.readStream.format("kafka").option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", spec.source.topic).option("startingOffsets", "earliest")
        .option("maxOffsetsPerTrigger", str(per_batch)).load()
        .select(F.from_json(F.col("value").cast("string"), schema).alias("e")).select("e.*")
        .writeStream.format("noop").option("checkpointLocation", str(work / f"base-{uuid.uuid4().hex[:6]}"))
        .trigger(availableNow=True).start()
    )
    query.awaitTermination()
    seconds, rows = _elapsed_s(query.recentProgress)
    print(f"  baseline: {rows:,} events in {seconds:.1f}s -> {rows / seconds:,.0f}/s", flush=True)
    return rows / seconds


def run_ours(spark: Any, spec: FeatureGroupSpec, profile: EnvironmentProfile, work: Path,
             records_out: list[int], inputs: list[int], folded: list[int] | None = None) -> float:
    from featurestream.connectors.kafka_source import read_kafka

    label = uuid.uuid4().hex[:6]
    spec = spec.model_copy(update={"online_store": spec.online_store.model_copy(
        update={"feature_group_name": f"bench-stream-{label}"})})
    run_profile = profile.model_copy(update={"checkpoint_root": str(work / f"ck-{label}"),
                                             "dlq_path": str(work / f"dlq-{label}")})
    ensure_feature_group(boto3.client("sagemaker"), spec, run_profile)
    check_with_spark(spec, spark)
    parsed = parse_events(read_kafka(spark, spec.source, run_profile.kafka, run_profile.fail_on_data_loss), spec)
    query, metrics = start_features_query(spark, spec, run_profile, parsed, available_now=True)
    query.awaitTermination()
    if query.exception() is not None:
        raise RuntimeError(f"feature query failed: {query.exception()}")
    seconds, rows = _elapsed_s(query.recentProgress)
    records_out.append(metrics.records)
    inputs.append(rows)
    if folded is not None:
        folded.append(metrics.folded)
    print(f"  ours:     {rows:,} events in {seconds:.1f}s -> {rows / seconds:,.0f}/s; {metrics.records:,} records "
          f"({metrics.decay_records:,} decay), {metrics.late_events} late, "
          f"{metrics.folded:,} folded before the shuffle, batches "
          f"{[p['durationMs'].get('triggerExecution') for p in query.recentProgress]}", flush=True)
    return rows / seconds


def _group_file(work: Path, text: str, topic: str, label: str, name: str = "bench_cards") -> Path:
    """A group file of its own per run: a fresh online feature group, the file name as the group's name."""
    folder = work / f"groups-{label}"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text.replace("TOPIC", topic).replace("FGNAME", f"bench-{name.replace('_', '-')}-{label}"))
    ensure_feature_group(boto3.client("sagemaker"), load_feature_group(path), online_only())
    return path


def run_shipped(spark: Any, work: Path, bootstrap: str, topic: str, per_batch: int,
                groups: int = 1) -> tuple[JobRun, int]:
    """The job as users run it (features + DLQ, `groups` copies of the group on the topic): its run and
    the records it wrote."""
    label = uuid.uuid4().hex[:6]
    files = [_group_file(work, GROUP, topic, label, f"bench_cards_{i}" if groups > 1 else "bench_cards")
             for i in range(groups)]
    names = {load_feature_group(f).online_store.feature_group_name for f in files}
    profile_file = write_profile(work / f"profile-{label}.yaml", work / f"run-{label}", bootstrap, per_batch)
    run = run_job(spark, files, profile_file)
    written = sum(int(totals.get("records_written", 0) or 0) for fg, totals in run.written.items() if fg in names)
    print(f"  shipped job, {groups} group(s): {run.events:,} events in {run.seconds():.1f}s -> "
          f"{run.events_per_s():,.0f}/s, {written:,} records written, batches "
          f"{[p['durationMs'].get('triggerExecution') for p in run.progress]}", flush=True)
    return run, written


def produce_sparse(spark: Any, bootstrap: str, topic: str, events: int, entities: int) -> Any:
    """`events` events over Zipf-distributed entities, in event-time order (one per 10 ms), one producer task."""
    import pandas as pd
    from kafka.admin import KafkaAdminClient, NewTopic
    from pyspark.sql import functions as F

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        admin.close()
    ids = zipf_entities(events, entities)
    start_ms = (int(time.time() * 1000) // 60_000 - 120) * 60_000
    frame = spark.createDataFrame(pd.DataFrame({"n": range(events), "entity": ids.astype("int64")})).repartition(1)
    rows = frame.orderBy("n").select(
        F.concat(F.lit("card-"), F.col("entity").cast("string")).alias("card_id"),
        F.concat(F.lit("s"), F.col("n").cast("string")).alias("transaction_id"),
        F.lit("m-1").alias("merchant_id"), ((F.col("n") % 997) / 10.0 + 0.5).alias("amount"),
        F.lit("EUR").alias("currency"),
        F.date_format(F.timestamp_millis(F.lit(start_ms) + F.col("n") * 10), "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")
        .alias("event_time"))
    (rows.select(F.col("card_id").alias("key"), F.to_json(F.struct(*rows.columns)).alias("value"))
     .write.format("kafka").option("kafka.bootstrap.servers", bootstrap).option("topic", topic)
     .option("kafka.linger.ms", "20").option("kafka.batch.size", "262144").save())
    return ids


def run_bare_loop(work: Path, records: int) -> float:
    """Seconds of the bare BatchWriteRecord loop for `records` records of the group's shape."""
    label = uuid.uuid4().hex[:6]
    spec = load_feature_group(_group_file(work, GROUP, "unused", label, "bench_bare"))
    from featurestream.engine.aggregation import feature_columns

    seconds = bare_batch_write_loop(spec.online_store.feature_group_name, records, feature_columns(spec))
    print(f"  bare BatchWriteRecord loop: {records:,} records in {seconds:.1f}s", flush=True)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=10_000)
    parser.add_argument("--events-per-entity", type=int, default=100, help="per micro-batch")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup-events", type=int, default=None,
                        help="events of the warm-up micro-batch (default: a measured micro-batch, entities x "
                             "events-per-entity); 0: no warm-up run")
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="where stream.json goes (default bench/results; exploration runs use a scratch folder)")
    parser.add_argument("--sparse-events", type=int, default=400_000)
    parser.add_argument("--sparse-entities", type=int, default=200_000)
    parser.add_argument("--sparse-per-batch", type=int, default=100_000, help="records per micro-batch")
    parser.add_argument("--pairs", default=",".join(DEFAULT_PAIRS),
                        help=f"which pairs to measure, comma-separated from {', '.join(PAIRS)}")
    parser.add_argument("--small", action="store_true",
                        help="a quick check that the bench runs: 200 entities x 20 events x 2 batches, 1 repeat, "
                             "no warm-up (its figures mean nothing)")
    args = parser.parse_args(argv)
    pairs = [p.strip() for p in args.pairs.split(",") if p.strip()]
    if not pairs or set(pairs) - set(PAIRS):
        parser.error(f"--pairs takes {', '.join(PAIRS)}")
    # bench/results/stream.json is one run of every default pair: a part or a trial goes elsewhere.
    if args.results_dir is None and (args.small or not set(DEFAULT_PAIRS) <= set(pairs)):
        parser.error("--small or a part of the default pairs would replace bench/results/stream.json: "
                     "add --results-dir")
    if args.small:
        args.entities, args.events_per_entity, args.batches, args.repeats, args.warmup_events = 200, 20, 2, 1, 0
        args.sparse_events, args.sparse_entities, args.sparse_per_batch = 4_000, 2_000, 2_000
    from featurestream.dev.stack import manager

    machine_line = machine()
    before = {s.name for s in manager.status() if s.healthy}
    manager.up(["kafka"])
    work = Path(tempfile.mkdtemp(prefix="bench-stream-"))
    emulator = EmulatorProcess(work / "emulator", flush_interval_s=3600).start()
    os.environ["AWS_ENDPOINT_URL_SAGEMAKER"] = emulator.url
    os.environ["AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME"] = emulator.url
    bootstrap = manager.env()["FEATURESTREAM_KAFKA_BOOTSTRAP"]
    spark = local_session("bench-stream", SparkSpec(master="local[2]", shuffle_partitions=2))
    spark.sparkContext.setLogLevel("ERROR")
    try:
        topic = f"bench-stream-{uuid.uuid4().hex[:8]}"
        group_file = work / "bench_cards.yaml"
        group_file.write_text(GROUP.replace("TOPIC", topic).replace("FGNAME", "bench-stream"))
        spec = load_feature_group(group_file)
        sketch_file = work / "bench_sketch_cards.yaml"
        sketch_file.write_text(SKETCH_GROUP.replace("TOPIC", topic).replace("FGNAME", "bench-stream-sketch"))
        sketch_spec = load_feature_group(sketch_file)
        per_batch = args.entities * args.events_per_entity
        if args.warmup_events is None:
            args.warmup_events = per_batch
        profile = load_profile("local")
        profile = profile.model_copy(update={
            "kafka": profile.kafka.model_copy(update={"bootstrap_servers": bootstrap,
                                                      "max_offsets_per_trigger": per_batch}),
            "feature_store": profile.feature_store.model_copy(update={"offline_store_s3_uri": None}),
        })
        total = produce(spark, bootstrap, topic, args.entities, per_batch, args.batches)
        print(f"produced {total:,} events to {topic}", flush=True)
        groups = {"features": spec, "sketch": sketch_spec}
        if args.warmup_events:
            warm_topic = f"{topic}-warmup"
            produce(spark, bootstrap, warm_topic, args.entities, args.warmup_events, 1)
            warm_profile = profile.model_copy(update={"kafka": profile.kafka.model_copy(
                update={"max_offsets_per_trigger": args.warmup_events})})
            print(f"warm-up on {args.warmup_events:,} events (not measured):", flush=True)
            warm = {name: group.model_copy(update={"source": group.source.model_copy(update={"topic": warm_topic})})
                    for name, group in groups.items()}
            run_baseline(spark, warm["features"], bootstrap, args.warmup_events, work)
            for name in [p for p in pairs if p in groups]:
                run_ours(spark, warm[name], warm_profile, work, [], [])
            if {"shipped", "groups", "sparse"} & set(pairs):
                run_shipped(spark, work, bootstrap, warm_topic, args.warmup_events)
        base: list[float] = []
        runs: dict[str, dict[str, list[Any]]] = {
            name: {"ours": [], "records": [], "inputs": [], "folded": []} for name in pairs if name in groups}
        shipped: dict[str, list[float]] = {"one": [], "four": [], "sparse": [], "bare": []}
        sparse_checks: dict[str, Any] = {}
        if "sparse" in pairs:
            sparse_topic = f"{topic}-sparse"
            ids = produce_sparse(spark, bootstrap, sparse_topic, args.sparse_events, args.sparse_entities)
            sparse_records = records_per_batch(ids, args.sparse_per_batch)
            sparse_checks = {"sparse_events": args.sparse_events, "sparse_distinct_entities": len(set(ids.tolist())),
                             "sparse_records_expected": sparse_records}
            print(f"produced {args.sparse_events:,} sparse events ({sparse_checks['sparse_distinct_entities']:,} "
                  f"entities, {sparse_records:,} records) to {sparse_topic}", flush=True)
        loads = []
        for _ in range(args.repeats):
            base.append(run_baseline(spark, spec, bootstrap, per_batch, work))
            for name in [p for p in pairs if p in groups]:
                r = runs[name]
                print(f"  [{name}]", flush=True)
                r["ours"].append(run_ours(spark, groups[name], profile, work, r["records"], r["inputs"], r["folded"]))
            if {"shipped", "groups"} & set(pairs):
                shipped["one"].append(run_shipped(spark, work, bootstrap, topic, per_batch)[0].events_per_s())
            if "groups" in pairs:
                shipped["four"].append(
                    run_shipped(spark, work, bootstrap, topic, per_batch, GROUP_COPIES)[0].events_per_s())
            if "sparse" in pairs:
                shipped["bare"].append(args.sparse_events / run_bare_loop(work, sparse_records))
                run, written = run_shipped(spark, work, bootstrap, sparse_topic, args.sparse_per_batch)
                shipped["sparse"].append(run.events_per_s())
                sparse_checks.setdefault("sparse_records_written_per_run", []).append(written)
            loads.append(round(os.getloadavg()[0], 1))
    finally:
        spark.stop()
        emulator.stop()
        started = [s.name for s in manager.status() if s.name not in before and s.healthy]
        if started:
            manager.down(started)
    labels = {"features": "events/s: component, the features query alone (no DLQ; 3 windows x 5 aggregations) vs "
                          "plain Kafka→from_json→noop",
              "sketch": "events/s: sketch group (2 percentile features, 1 distinct count, 1 top-k, 3 windows) "
                        "vs plain Kafka→from_json→noop"}
    result_pairs = []
    median = statistics.median
    if "shipped" in pairs:
        result_pairs.append(Pair("events/s: shipped job (featurestream stream: features + DLQ), dense, vs plain "
                                 "Kafka→from_json→noop", median(shipped["one"]), median(base), "events/s"))
    if "sparse" in pairs:
        result_pairs.append(Pair("events/s: shipped job, sparse (Zipf entities, event-time order) vs bare boto3 "
                                 "BatchWriteRecord loop (8 threads, 25 a call) writing the same records",
                                 median(shipped["sparse"]), median(shipped["bare"]), "events/s"))
    if "groups" in pairs:
        result_pairs.append(Pair(f"events/s: shipped job, {GROUP_COPIES} groups on one topic vs 1 group",
                                 median(shipped["four"]), median(shipped["one"]), "events/s"))
    result_pairs += [Pair(labels[name], median(runs[name]["ours"]), median(base), "events/s")
                     for name in pairs if name in groups]
    checks: dict[str, Any] = {"pair_statistic": "ours and baseline: the median of each side's repeats; the "
                                                "per-repeat ratios (each side's run of the same repeat) beside it",
                              "baseline_events_per_s_runs": [round(x) for x in base],
                              "load_avg_1m_after_each_pair": loads, **sparse_checks,
                              **{f"shipped_{k}_events_per_s_runs": [round(x) for x in v]
                                 for k, v in shipped.items() if v}}
    if shipped["one"] and "shipped" in pairs:
        checks["shipped_dense_ratio_per_repeat"] = [round(o / b, 3) for o, b in zip(shipped["one"], base, strict=True)]
    for name in [p for p in pairs if p in groups]:
        r = runs[name]
        prefix = "" if name == "features" else "sketch_"
        checks.update({
            f"{prefix}writes_per_event": round(sum(r["records"]) / max(1, sum(r["inputs"])), 5),
            f"{prefix}records_written_per_run": r["records"],
            f"{prefix}input_events_per_run": r["inputs"],
            # Events that reached the state folded into map-side partials (the rest travelled alone).
            f"{prefix}events_folded_before_shuffle_per_run": r["folded"],
            f"{prefix}ours_events_per_s_runs": [round(x) for x in r["ours"]],
            f"{prefix}ratio_per_repeat": [round(o / b, 3) for o, b in zip(r["ours"], base, strict=True)],
        })
    params = {"entities": args.entities, "events_per_entity_per_batch": args.events_per_entity,
              "sparse_events": args.sparse_events, "sparse_entities": args.sparse_entities,
              "sparse_per_batch": args.sparse_per_batch, "groups_copies": GROUP_COPIES,
              "batches": args.batches, "repeats": args.repeats, "warmup_events": args.warmup_events,
              "master": "local[2]", "shuffle_partitions": 2, "pairs": pairs,
              "windows": ["5m", "1h", "24h"], "aggregations": ["count", "sum", "mean", "max", "stddev_pop"],
              "sketch_aggregations": ["approx_percentile x2 (p50, p95, p99)", "approx_count_distinct", "top_k (k=3)"],
              "tile": "1m", "kafka_partitions": 2, "sink": "featurestream writer → private emulator"}
    extra = {"results_dir": args.results_dir} if args.results_dir else {}
    write_results("stream", params, result_pairs, checks, machine_description=machine_line, **extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
