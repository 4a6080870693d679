"""CPU per event of bench-stream's sketch group and of its plain dense group, split by where it goes.

bench/stream_bench.py's "sketch group vs plain Kafka->from_json->noop" pair, small and measured in
CPU seconds instead of wall time (the machine is shared): the same producer and events (E entities
x N events per micro-batch, 3 micro-batches, 10 minutes of event time each), the features query of
each group (`start_features_query`, availableNow, the writer to a private emulator) and the
baseline (Kafka -> from_json -> noop), run in turn `--repeats` times in one Spark session after a
warm-up run of each. Per run and event it reports:

- process CPU: Spark's JVM (driver and executor in local mode), this Python driver and the JVM's
  Python workers;
- the Spark tasks' CPU from the event log, by stage: the map stage (the one that reads Kafka: parse,
  transforms, the engine's map side, the shuffle write) and the state stage (the shuffle read, the
  state function, RocksDB, the output rows), the rest (the writer's jobs on the engine's output);
- the JVM's threads: executor task threads vs the query's thread (planning, the foreachBatch body)
  vs the others (GC, JIT, ...), from /proc.

    .venv/bin/python bench/sketch_cost.py --results-dir /tmp/x [--entities 3000] [--events-per-entity 100]
    .venv/bin/python bench/sketch_cost.py --engine-jar /tmp/old-tiles.jar ...   # another engine build

Writes `<results-dir>/sketch_cost.json`: a tool to decide with, not a `make bench-*` target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

for _key, _value in (
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing"),
    ("AWS_REGION", "us-east-1"),
    ("AWS_DEFAULT_REGION", "us-east-1"),
    ("SPARK_LOCAL_IP", "127.0.0.1"),
    ("PYSPARK_PYTHON", sys.executable),
):
    os.environ.setdefault(_key, _value)

from bench import jfr_phases  # noqa: E402
from bench.batch_cost import _with_children  # noqa: E402
from bench.common import machine, write_results  # noqa: E402
from bench.proc_cpu import tree_cpu_seconds  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")


def _threads(pid: int) -> dict[str, float]:
    """CPU seconds of the JVM's threads by kind: tasks, the query's thread, GC, JIT, the rest."""
    out = {"tasks": 0.0, "query_thread": 0.0, "gc": 0.0, "jit": 0.0, "other": 0.0}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "stat").read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / _TICK
        kind = (
            "tasks"
            if name.startswith("Executor task")
            else "query_thread"
            if name.startswith("stream exec")
            else "gc"
            if name.startswith(("GC Thread", "G1 ", "VM Thread"))
            else "jit"
            if "CompilerThre" in name
            else "other"
        )
        out[kind] += seconds
        if kind == "other":
            out[f"other:{name}"] = out.get(f"other:{name}", 0.0) + seconds
    return out


def _stage_cpu(event_log: Path, spans: list[tuple[float, float]]) -> list[dict[str, float]]:
    """Per run (its wall-clock span): the tasks' CPU seconds by stage kind (map: reads the source;
    state: the state operator; other: the writer's jobs on the engine's output)."""
    stage_kind: dict[int, str] = {}
    out = [{"map": 0.0, "state": 0.0, "other": 0.0} for _ in spans]
    for log_file in event_log.iterdir():
        for line in log_file.read_text().splitlines():
            event = json.loads(line)
            kind = event["Event"]
            if kind == "SparkListenerJobStart":
                for info in event.get("Stage Infos", []):
                    rdds = info.get("RDD Info", [])
                    names = " ".join(r.get("Name", "") + " " + r.get("Scope", "") for r in rdds)
                    stage_kind[info["Stage ID"]] = (
                        "map"
                        if "DataSourceRDD" in names
                        else "state"
                        if "StateStoreRDD" in names or "FlatMapGroupsWithState" in names
                        else "other"
                    )
            elif kind == "SparkListenerTaskEnd":
                launched = event["Task Info"]["Launch Time"] / 1000
                metrics = event.get("Task Metrics") or {}
                cpu = (metrics.get("Executor CPU Time", 0) + metrics.get("Executor Deserialize CPU Time", 0)) / 1e9
                for i, (start, end) in enumerate(spans):
                    if start <= launched <= end:
                        out[i][stage_kind.get(event["Stage ID"], "other")] += cpu
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=3000)
    parser.add_argument("--events-per-entity", type=int, default=100, help="per micro-batch")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--groups", default="sketch,features", help="which of sketch, features, baseline")
    parser.add_argument("--engine-jar", type=Path, default=None, help="another build of the engine jar")
    parser.add_argument("--label", default="")
    parser.add_argument("--jfr", type=Path, default=None, metavar="FILE", help="record the measured runs with JFR")
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--results-dir", type=Path, required=True)
    args = parser.parse_args(argv)

    if args.engine_jar is not None:
        from featurestream import spark as spark_module
        from featurestream.engine import aggregation
        from featurestream.io import jars

        jar = args.engine_jar.resolve()
        jars.MODULE_JARS = (jar, jars.KINESIS_SOURCE_JAR)
        spark_module.ENGINE_JAR = jar  # type: ignore[attr-defined]
        aggregation.ENGINE_JAR = jar  # type: ignore[attr-defined]

    from bench.stream_bench import GROUP, SKETCH_GROUP, produce, run_baseline, run_ours
    from featurestream.config import load_feature_group, load_profile
    from featurestream.config.profile import SparkSpec
    from featurestream.dev.feature_store import EmulatorProcess
    from featurestream.dev.stack import manager
    from featurestream.spark import local_session

    machine_line = machine()
    before = {s.name for s in manager.status() if s.healthy}
    manager.up(["kafka"])
    work = Path(tempfile.mkdtemp(prefix="bench-sketch-cost-"))
    emulator = EmulatorProcess(work / "emulator", flush_interval_s=3600).start()
    os.environ["AWS_ENDPOINT_URL_SAGEMAKER"] = emulator.url
    os.environ["AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME"] = emulator.url
    bootstrap = manager.env()["FEATURESTREAM_KAFKA_BOOTSTRAP"]
    event_log = work / "events"
    event_log.mkdir()
    spark = local_session(
        "bench-sketch-cost",
        SparkSpec(
            master="local[2]",
            shuffle_partitions=2,
            conf={
                "spark.eventLog.enabled": "true",
                "spark.eventLog.dir": str(event_log),
                **dict(item.split("=", 1) for item in args.spark_conf),
            },
        ),
    )
    spark.sparkContext.setLogLevel("ERROR")
    jvm_pid = spark.sparkContext._gateway.proc.pid  # type: ignore[union-attr]
    # Janino compilations of Spark's generated code (each a new class for the JIT to compile).
    codegen = spark.sparkContext._jvm.org.apache.spark.metrics.source.CodegenMetrics  # type: ignore[union-attr]
    names = [g.strip() for g in args.groups.split(",") if g.strip()]
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    spans: list[tuple[float, float]] = []
    measured: dict[str, list[int]] = {name: [] for name in names}
    try:
        topic = f"sketch-cost-{uuid.uuid4().hex[:8]}"
        specs = {}
        for name, text in (("features", GROUP), ("sketch", SKETCH_GROUP), ("baseline", GROUP)):
            path = work / f"{name}_cards.yaml"
            path.write_text(text.replace("TOPIC", topic).replace("FGNAME", f"cost-{name}"))
            specs[name] = load_feature_group(path)
        per_batch = args.entities * args.events_per_entity
        profile = load_profile("local")
        profile = profile.model_copy(
            update={
                "kafka": profile.kafka.model_copy(
                    update={"bootstrap_servers": bootstrap, "max_offsets_per_trigger": per_batch}
                ),
                "feature_store": profile.feature_store.model_copy(update={"offline_store_s3_uri": None}),
            }
        )
        total = produce(spark, bootstrap, topic, args.entities, per_batch, args.batches)
        print(f"produced {total:,} events", flush=True)

        def one(name: str) -> dict[str, float]:
            cpu0 = {
                "jvm": _with_children(jvm_pid),
                "driver_python": sum(os.times()[:2]),
                "python_workers": sum(v for p, v in tree_cpu_seconds(jvm_pid).items() if p != jvm_pid),
            }
            threads0 = _threads(jvm_pid)
            compiled0 = codegen.METRIC_COMPILATION_TIME().getCount()
            load = os.getloadavg()[0]
            start = time.time()
            if name == "baseline":
                run_baseline(spark, specs[name], bootstrap, per_batch, work)
            else:
                records: list[int] = []
                inputs: list[int] = []
                run_ours(spark, specs[name], profile, work, records, inputs)
            cpu1 = {
                "jvm": _with_children(jvm_pid),
                "driver_python": sum(os.times()[:2]),
                "python_workers": sum(v for p, v in tree_cpu_seconds(jvm_pid).items() if p != jvm_pid),
            }
            threads1 = _threads(jvm_pid)
            compiled = codegen.METRIC_COMPILATION_TIME().getCount() - compiled0
            spans.append((start, time.time()))
            out = {f"cpu_{k}_us": 1e6 * (cpu1[k] - cpu0[k]) / total for k in cpu0}
            out["cpu_total_us"] = sum(out[f"cpu_{k}_us"] for k in cpu0)
            out.update(
                {
                    f"jvm_{k}_us": 1e6 * (threads1[k] - threads0.get(k, 0.0)) / total
                    for k in threads1
                    if ":" not in k or threads1[k] - threads0.get(k, 0.0) > 0.2e-6 * total
                }
            )
            # Threads that ended within the run (its query's own thread, the Arrow servers, ...): the
            # JVM's CPU that no live thread accounts for.
            out["jvm_ended_us"] = out["cpu_jvm_us"] - sum(
                out[f"jvm_{k}_us"] for k in ("tasks", "query_thread", "gc", "jit", "other")
            )
            out["generated_classes_compiled"] = compiled
            out["load_1m"] = round((load + os.getloadavg()[0]) / 2, 2)
            return out

        print("warm-up (not measured)", flush=True)
        for name in names:
            one(name)
        if args.jfr:
            args.jfr.parent.mkdir(parents=True, exist_ok=True)
        recording = jfr_phases.start(spark.sparkContext._jvm, compilations=True) if args.jfr else None
        for _ in range(args.repeats):
            for name in names:
                print(f"[{name}]", flush=True)
                measured[name].append(len(spans))
                runs[name].append(one(name))
        if recording is not None:
            jfr_phases.stop(spark.sparkContext._jvm, recording, args.jfr.resolve())
    finally:
        spark.stop()
        emulator.stop()
        started = [s.name for s in manager.status() if s.name not in before and s.healthy]
        if started:
            manager.down(started)
    stages = _stage_cpu(event_log, spans)
    for name in names:
        for run, index in zip(runs[name], measured[name], strict=True):
            run.update({f"task_{k}_us": 1e6 * v / total for k, v in stages[index].items()})
    result: dict[str, Any] = {"label": args.label, "events_per_run": total}
    for name, values in runs.items():
        keys = sorted({k for v in values for k in v})
        result[name] = {k: round(statistics.median(v.get(k, 0.0) for v in values), 2) for k in keys}
        for key in ("cpu_total_us", "jvm_tasks_us", "jvm_gc_us", "jvm_jit_us", "jvm_ended_us"):
            result[name][f"{key}_runs"] = [round(v.get(key, 0.0), 2) for v in values]
    if args.jfr:
        # JIT compilations per measured run (all groups' runs together).
        result["jit_per_run"] = jfr_phases.compilations(args.jfr.resolve(), sum(len(v) for v in runs.values()))
    print(json.dumps(result, indent=1), flush=True)
    params = {
        "entities": args.entities,
        "events_per_entity": args.events_per_entity,
        "batches": args.batches,
        "repeats": args.repeats,
        "groups": names,
        "engine_jar": str(args.engine_jar or ""),
    }
    write_results("sketch_cost", params, [], result, machine_description=machine_line, results_dir=args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
