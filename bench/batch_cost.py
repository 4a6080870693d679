"""What one small micro-batch of the shipped job costs: Spark jobs, stages, tasks and CPU seconds.

Freshness at a short trigger is bound by the fixed cost of a micro-batch, and wall-clock figures
swing 2-3x on a shared machine; counts and CPU seconds do not. This runs the job's query
(`pipeline.start_source_query`, the session `featurestream stream` builds, the local profile with
a `--trigger` trigger, the writer against a private Feature Store emulator) in this process and
feeds it `--batches` rounds of `--events` events over `--entities` entities (plus one brand-new
entity a round, as the freshness probe sends), each round processed before the next
(`processAllAvailable`). Per micro-batch with data it reports medians of:

- Spark's counts from the event log: jobs, stages, tasks, and the tasks' CPU seconds;
- CPU seconds of the whole process tree (driver JVM = executor in local mode, this Python driver,
  the Python workers), per round, minus the idle triggers' share (measured after the rounds);
- what the micro-batch's plan read and moved: stages that scanned the source and the records they
  read (once per batch when the groups share one read), shuffle records written and read;
- the job's own timers: Spark's phases (`durationMs`), the foreachBatch body's laps
  (`engine_batch`), the writer's (`online_store_batch`); wall seconds, load-dependent;
- with `--jfr DIR`: a JFR recording of the driver JVM over the measured rounds, its samples per
  micro-batch by thread and the query thread's shares by phase of Spark's micro-batch
  (`bench/jfr_phases.py`: planning, the foreachBatch call's physical plan and code generation,
  the plan description Spark's SQL listener event carries).

    .venv/bin/python bench/batch_cost.py --results-dir /tmp/x             # 30 rounds of 50 events
    .venv/bin/python bench/batch_cost.py --spark-conf KEY=VALUE ...       # a variant, to compare
    .venv/bin/python bench/batch_cost.py --jfr /tmp/x ...                 # where the JVM's time goes
    # several groups on one topic (`--groups`, copies of the group) on a dense shape, to compare
    # CPU per event of 1 and 4 groups (bench-stream's groups pair, small):
    .venv/bin/python bench/batch_cost.py --groups 4 --events 8000 --entities 80 --whole-rounds \
        --batches 6 --warmup 3 --results-dir /tmp/x

Writes `<results-dir>/batch_cost.json` (never bench/results unless asked); not a `make bench-*`
target: a tool to decide with.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

for _key, _value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                     ("AWS_REGION", "us-east-1"), ("AWS_DEFAULT_REGION", "us-east-1"),
                     ("SPARK_LOCAL_IP", "127.0.0.1"), ("PYSPARK_PYTHON", sys.executable),
                     ("PYSPARK_DRIVER_PYTHON", sys.executable)):
    os.environ.setdefault(_key, _value)

import boto3  # noqa: E402
import yaml  # noqa: E402

from bench import hsperf, jfr_phases  # noqa: E402
from bench.common import machine, write_results  # noqa: E402
from bench.freshness_bench import GROUP, _event  # noqa: E402
from bench.proc_cpu import tree_cpu_seconds  # noqa: E402
from bench.shipped_job import online_only, write_profile  # noqa: E402
from bench.stream_bench import GROUP as STREAM_GROUP  # noqa: E402
from bench.stream_bench import SKETCH_GROUP  # noqa: E402
from featurestream.config import load_feature_group, load_profile  # noqa: E402
from featurestream.connectors.provisioning import ensure_feature_group  # noqa: E402
from featurestream.dev.feature_store import EmulatorProcess  # noqa: E402

# `--shape`: the group (YAML with TOPIC and FGNAME) and the events it reads. freshness: the freshness
# bench's small group; dense/sketch: bench-stream's dense group and its sketch group (all their fields).
SHAPES = {"freshness": GROUP, "dense": STREAM_GROUP, "sketch": SKETCH_GROUP}


def _stream_event(card: str, n: int) -> bytes:
    """An event of bench-stream's shape, timed now (its merchants change from one event to the next)."""
    return json.dumps({"transaction_id": f"t{n}", "card_id": card, "merchant_id": f"m-{(n * 31) % 200}",
                       "amount": (n * 7919 % 100_000) / 100.0 + 0.5, "currency": "EUR",
                       "event_time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")}
                      ).encode()


def _median(values: list[float]) -> float | None:
    return round(sorted(values)[len(values) // 2], 4) if values else None


class _Lines(logging.Handler):
    """The job's JSON log lines (engine_batch, online_store_batch), kept in memory."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.events: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if text.startswith("{"):
            try:
                self.events.append(json.loads(text))
            except ValueError:
                pass


class _Py4jCalls:
    """Counts the driver's py4j commands, and among them the name look-ups (`jvm.a.b`: each one a
    class search over every jar in the JVM when the name is not a class), by name."""

    def __init__(self, trace: bool = False) -> None:
        import collections
        import traceback

        from py4j import clientserver

        self.commands = 0
        self.lookups: collections.Counter[str] = collections.Counter()
        # With `trace`: where each look-up comes from (the innermost frame outside py4j and pyspark).
        self.callers: collections.Counter[str] = collections.Counter()
        original = clientserver.ClientServerConnection.send_command

        def counted(connection: Any, command: str) -> Any:
            self.commands += 1
            if command.startswith("r\nu\n"):
                name = command.split("\n")[2]
                self.lookups[name] += 1
                if trace:
                    frames = [f for f in traceback.extract_stack()[:-1] if "/py4j/" not in f.filename]
                    ours = [f for f in frames if "/pyspark/" not in f.filename]
                    inner = frames[-1] if frames else None
                    mine = ours[-1] if ours else None
                    where = f"{mine.filename}:{mine.lineno}" if mine else "?"
                    self.callers[f"{name} <- {inner.name if inner else '?'} <- {where}"] += 1
            return original(connection, command)

        clientserver.ClientServerConnection.send_command = counted  # type: ignore[method-assign]

    def read(self) -> tuple[int, int]:
        return self.commands, sum(self.lookups.values())


# The driver JVM's threads by what they do (Linux thread names, cut at 15 characters): the JIT
# compilers and the garbage collector work for the JVM's warm-up and heap, not for the batch, and
# swamp the batch's own CPU for minutes after a start.
_THREAD_GROUPS = (("jit", ("C2 CompilerThre", "C1 CompilerThre")),
                  ("gc", ("GC Thread", "G1 ")),
                  ("query_thread", ("stream executio",)),
                  ("tasks", ("Executor task l",)))


def jvm_threads(pid: int) -> dict[int, tuple[str, float]]:
    """{thread id: (group, user + system CPU seconds)} of the live threads of `pid`."""
    out: dict[int, tuple[str, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        group = next((label for label, prefixes in _THREAD_GROUPS if name.startswith(prefixes)), "other")
        out[int(task.name)] = (group, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    return out


def thread_cpu_between(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]],
                       process_s: float) -> dict[str, float]:
    """CPU seconds by thread group between two readings; `ended` is what threads that exited in
    between used (the process's total minus the live threads' share), e.g. the Arrow server's."""
    out: dict[str, float] = {label: 0.0 for label, _ in _THREAD_GROUPS}
    out["other"] = 0.0
    for tid, (group, seconds) in after.items():
        out[group] += seconds - (before[tid][1] if tid in before else 0.0)
    out["ended"] = max(process_s - sum(out.values()), 0.0)
    return out


def _with_children(pid: int) -> float:
    """User + system CPU seconds of `pid` and of its children that exited and were waited for."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


class _Cpu:
    """CPU seconds by part: this Python driver, Spark's JVM (driver and executor in local mode, with
    the short-lived processes it waited for), the JVM's Python workers, the emulator (not the
    job's: kept apart)."""

    def __init__(self, jvm_pid: int, emulator_pid: int) -> None:
        self.jvm_pid, self.emulator_pid = jvm_pid, emulator_pid

    def read(self) -> dict[str, float]:
        jvm_tree = tree_cpu_seconds(self.jvm_pid)
        jvm_tree.pop(self.jvm_pid, None)
        return {"driver_python": sum(os.times()[:2]), "jvm": _with_children(self.jvm_pid),
                "python_workers": sum(jvm_tree.values()),
                "emulator": sum(tree_cpu_seconds(self.emulator_pid).values())}

    @staticmethod
    def between(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        return {key: after[key] - before[key] for key in after}


def spark_counts(event_log: Path) -> dict[int, dict[str, float]]:
    """Per streaming batch id: Spark jobs, stages, tasks and the tasks' CPU seconds (event log)."""
    batch_of_job: dict[int, int] = {}
    batch_of_stage: dict[int, int] = {}
    input_records: dict[int, int] = {}
    out: dict[int, dict[str, float]] = {}
    for line in event_log.read_text().splitlines():
        event = json.loads(line)
        kind = event["Event"]
        if kind == "SparkListenerJobStart":
            batch = (event.get("Properties") or {}).get("streaming.sql.batchId")
            if batch is None:
                continue
            batch_of_job[event["Job ID"]] = int(batch)
            counts = out.setdefault(int(batch), {"jobs": 0, "stages": 0, "tasks": 0, "task_cpu_s": 0.0,
                                                 "task_run_s": 0.0, "source_records_read": 0, "source_scans": 0,
                                                 "shuffle_records_written": 0, "shuffle_mb_written": 0.0,
                                                 "shuffle_records_read": 0})
            counts["jobs"] += 1
            for stage in event["Stage IDs"]:
                batch_of_stage[stage] = int(batch)
        elif kind == "SparkListenerStageCompleted":
            info = event["Stage Info"]
            batch = batch_of_stage.get(info["Stage ID"])
            if batch is not None and "Submission Time" in info:  # skipped stages never ran
                out[batch]["stages"] += 1
                # A stage that fetches from the source (a DataSourceRDD; a reused shuffle or the
                # cache count input records too, but are not a scan of the source).
                if any(rdd.get("Name") == "DataSourceRDD" for rdd in info.get("RDD Info", [])):
                    out[batch]["source_scans"] += 1
                    out[batch]["source_records_read"] += input_records.get(info["Stage ID"], 0)
        elif kind == "SparkListenerTaskEnd":
            batch = batch_of_stage.get(event["Stage ID"])
            metrics = event.get("Task Metrics") or {}
            if batch is not None:
                out[batch]["tasks"] += 1
                out[batch]["task_cpu_s"] += (metrics.get("Executor CPU Time", 0)
                                             + metrics.get("Executor Deserialize CPU Time", 0)) / 1e9
                out[batch]["task_run_s"] += metrics.get("Executor Run Time", 0) / 1e3
                input_records[event["Stage ID"]] = (input_records.get(event["Stage ID"], 0)
                                                    + (metrics.get("Input Metrics") or {}).get("Records Read", 0))
                written = metrics.get("Shuffle Write Metrics") or {}
                out[batch]["shuffle_records_written"] += written.get("Shuffle Records Written", 0)
                out[batch]["shuffle_mb_written"] += written.get("Shuffle Bytes Written", 0) / 1e6
                out[batch]["shuffle_records_read"] += (metrics.get("Shuffle Read Metrics") or {}).get(
                    "Total Records Read", 0)
    return out


def _dump_plan(jvm: Any, query: Any, folder: Path) -> None:
    """The query's last micro-batch: its physical plan and Spark's generated code (to compare batches)."""
    folder.mkdir(parents=True, exist_ok=True)
    plan = query._jsq.streamingQuery().lastExecution().executedPlan()
    (folder / "plan.txt").write_text(plan.toString())
    codegen = jvm.org.apache.spark.sql.execution.debug.package.codegenString(plan)
    (folder / "codegen.txt").write_text(codegen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=8, help="rounds run first and not counted")
    parser.add_argument("--events", type=int, default=50, help="background events per round")
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--trigger", default="500 milliseconds")
    parser.add_argument("--idle-s", type=float, default=6.0, help="idle time after the rounds (idle triggers' CPU)")
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--driver-write-max-records", type=int, default=None)
    parser.add_argument("--results-dir", type=Path, required=True)
    parser.add_argument("--label", default="", help="a name for this variant in the JSON")
    parser.add_argument("--whole-rounds", action="store_true", help="send each round at once (one batch a round)")
    parser.add_argument("--groups", type=int, default=1, help="copies of the group on the topic (one query)")
    parser.add_argument("--log-codegen", action="store_true",
                        help="log each Spark code generation with its source (CodeGenerator at DEBUG, to stderr)")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="freshness",
                        help="the group and its events: the freshness bench's, bench-stream's dense or sketch group")
    parser.add_argument("--trace-lookups", action="store_true", help="print where py4j name look-ups come from")
    parser.add_argument("--dump-plans", type=Path, default=None, metavar="DIR",
                        help="write the last two measured batches' physical plans and generated code into DIR")
    parser.add_argument("--jfr", type=Path, default=None, metavar="DIR",
                        help="record the driver JVM with JFR over the measured rounds into DIR")
    args = parser.parse_args(argv)

    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    from featurestream.cli.commands.stream import prepare_profile
    from featurestream.cli.job_session import job_session
    from featurestream.dev.stack import manager
    from featurestream.engine.pipeline import start_source_query

    machine_line = machine()
    before = {s.name for s in manager.status() if s.healthy}
    manager.up(["kafka"])
    work = Path(tempfile.mkdtemp(prefix="bench-batch-cost-"))
    emulator = EmulatorProcess(work / "emulator", flush_interval_s=3600).start()
    os.environ["AWS_ENDPOINT_URL_SAGEMAKER"] = emulator.url
    os.environ["AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME"] = emulator.url
    bootstrap = manager.env()["FEATURESTREAM_KAFKA_BOOTSTRAP"]
    lines = _Lines()
    logging.getLogger("featurestream").addHandler(lines)
    logging.getLogger("featurestream").setLevel(logging.INFO)
    event_log = work / "events"
    event_log.mkdir()
    try:
        suffix = uuid.uuid4().hex[:8]
        topic = f"batch-cost-{suffix}"
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        admin.close()
        # `--whole-rounds`: the producer holds a round until its flush, so one micro-batch takes it
        # whole (a round under ~1 MB: one request per partition within the broker's message size).
        producer = (KafkaProducer(bootstrap_servers=bootstrap, linger_ms=60_000, batch_size=900_000,
                                  delivery_timeout_ms=120_000)
                    if args.whole_rounds else KafkaProducer(bootstrap_servers=bootstrap, linger_ms=2))
        specs = []
        for copy in range(args.groups):
            group_file = work / (f"cost_cards_{copy}.yaml" if args.groups > 1 else "cost_cards.yaml")
            text = SHAPES[args.shape].replace("TOPIC", topic)
            group_file.write_text(text.replace("FGNAME", f"cost-cards-{suffix}-{copy}"))
            specs.append(load_feature_group(group_file))
            ensure_feature_group(boto3.client("sagemaker"), specs[-1], online_only())
        profile_file = write_profile(work / "profile.yaml", work / "job", bootstrap, 1_000_000, args.trigger)
        raw = yaml.safe_load(profile_file.read_text())
        raw["spark"]["conf"] = {"spark.eventLog.enabled": "true", "spark.eventLog.dir": str(event_log),
                                **dict(item.split("=", 1) for item in args.spark_conf)}
        if args.jfr is not None:
            key = "spark.driver.extraJavaOptions"
            raw["spark"]["conf"][key] = f"{raw['spark']['conf'].get(key, '')} {jfr_phases.STACK_OPTION}".strip()
        if args.driver_write_max_records is not None:
            raw["feature_store"]["driver_write_max_records"] = args.driver_write_max_records
        profile_file.write_text(yaml.safe_dump(raw))
        profile = prepare_profile(load_profile(str(profile_file)), str(profile_file))
        spark, _ = job_session("batch-cost", profile, (profile.checkpoint_root, profile.dlq_path))
        if args.log_codegen:
            log4j = spark.sparkContext._jvm.org.apache.logging.log4j  # type: ignore[union-attr]
            log4j.core.config.Configurator.setLevel("org.apache.spark.sql.catalyst.expressions.codegen.CodeGenerator",
                                                    log4j.Level.DEBUG)
        started = start_source_query(spark, specs, profile)
        query = started.query
        calls = _Py4jCalls(trace=args.trace_lookups)
        # Janino compilations of Spark's generated code (CodeGenerator's cache misses).
        codegen = spark.sparkContext._jvm.org.apache.spark.metrics.source.CodegenMetrics  # type: ignore[union-attr]
        clock = _Cpu(spark.sparkContext._gateway.proc.pid, emulator._proc.pid)  # type: ignore[union-attr]
        rounds: list[dict[str, float]] = []
        last_names: dict[str, int] = {}
        n = 0
        recording, jfr_file = None, None
        jvm_pid = spark.sparkContext._gateway.proc.pid  # type: ignore[union-attr]
        for index in range(args.warmup + args.batches):
            if index == args.warmup and args.jfr is not None:
                recording = jfr_phases.start(spark.sparkContext._jvm, compilations=True)
            for _ in range(args.events):
                card = f"card-{random.randrange(args.entities)}"
                producer.send(topic, _event(card, n) if args.shape == "freshness" else _stream_event(card, n))
                n += 1
            producer.send(topic, _event(f"new-{suffix}-{index}", -index))
            producer.flush()
            generated = codegen.METRIC_COMPILATION_TIME().getCount()
            jit = hsperf.counters(jvm_pid)
            cpu, wall, (commands, lookups) = clock.read(), time.monotonic(), calls.read()
            threads = jvm_threads(jvm_pid)
            names = dict(calls.lookups)
            query.processAllAvailable()
            if index >= args.warmup:
                done, spent = calls.read(), clock.between(cpu, clock.read())
                by_thread = thread_cpu_between(threads, jvm_threads(jvm_pid), spent["jvm"])
                jit_after = hsperf.counters(jvm_pid)
                rounds.append({**spent, **{f"jvm_{k}": v for k, v in by_thread.items()},
                               "generated_classes": codegen.METRIC_COMPILATION_TIME().getCount() - generated,
                               **{f"hs_{k}": jit_after[k] - jit[k] for k in jit},
                               "wall_s": time.monotonic() - wall,
                               "py4j_commands": done[0] - commands, "py4j_lookups": done[1] - lookups})
                if args.dump_plans is not None and index >= args.warmup + args.batches - 2:
                    _dump_plan(spark.sparkContext._jvm, query, args.dump_plans / f"round_{index - args.warmup}")
                if index == args.warmup + args.batches - 1:
                    last_names = {k: v - names.get(k, 0) for k, v in calls.lookups.items() if v > names.get(k, 0)}
        if recording is not None and args.jfr is not None:
            args.jfr.mkdir(parents=True, exist_ok=True)
            jfr_file = jfr_phases.stop(spark.sparkContext._jvm, recording, args.jfr / "batch_cost.jfr")
        cpu, wall = clock.read(), time.monotonic()
        time.sleep(args.idle_s)
        idle = {k: v / (time.monotonic() - wall) for k, v in clock.between(cpu, clock.read()).items()}
        # From the query, not a Python listener: pyspark's listener wrapper makes ~120 py4j name
        # look-ups a progress event (see featurestream.ops.listener), which would count here.
        events: list[dict[str, Any]] = list(query.recentProgress)
        query.stop()
        spark.stop()
    finally:
        emulator.stop()
        if "kafka" not in before:
            manager.down(["kafka"])
    progress = [p for p in events if int(p.get("numInputRows", 0)) > 0]
    measured = {int(p["batchId"]) for p in progress[-args.batches:]}
    counts = {}
    for log_file in event_log.iterdir():
        counts.update(spark_counts(log_file))
    kept = [c for b, c in counts.items() if b in measured]
    engine = [e for e in lines.events if e.get("event") == "engine_batch" and e.get("batch_id") in measured]
    writes = [e for e in lines.events if e.get("event") == "online_store_batch" and e.get("batch_id") in measured]
    result: dict[str, Any] = {
        "label": args.label, "groups": args.groups, "batches": len(measured),
        "input_rows": _median([float(p["numInputRows"]) for p in progress if int(p["batchId"]) in measured]),
        "round_wall_s": _median([r["wall_s"] for r in rounds]),
        "py4j_commands": _median([r["py4j_commands"] for r in rounds]),
        "py4j_name_lookups": _median([r["py4j_lookups"] for r in rounds]),
        "generated_classes_per_round": _median([r["generated_classes"] for r in rounds]),
        "generated_classes_runs": [r["generated_classes"] for r in rounds],
        **{f"hotspot_{k}_per_round": _median([r[f"hs_{k}"] for r in rounds]) for k in hsperf.JIT},
        "jit_compiles_runs": [r["hs_sun.ci.totalCompiles"] for r in rounds],
        "py4j_names_looked_up_last_round": dict(sorted(last_names.items(), key=lambda kv: -kv[1])),
        "idle_cpu_per_s": {k: round(v, 4) for k, v in idle.items()},
    }
    parts = ("driver_python", "jvm", "python_workers")
    result["job_cpu_s"] = _median([sum(r[k] - idle[k] * r["wall_s"] for k in parts) for r in rounds])
    # The batch's own CPU: the job's but the JVM's JIT compilers and garbage collector (no idle
    # correction: the idle triggers' share is small beside it and mostly the JIT's).
    result["job_cpu_no_jit_gc_s"] = _median([r["driver_python"] + r["python_workers"] + r["jvm"] - r["jvm_jit"]
                                             - r["jvm_gc"] for r in rounds])
    for key in ("query_thread", "tasks", "ended", "other", "jit", "gc"):
        result[f"cpu_jvm_{key}_s"] = _median([r[f"jvm_{key}"] for r in rounds])
    # Means too: the threads' CPU comes in ticks of 10 ms, coarse beside a median's steps.
    result["mean_job_cpu_no_jit_gc_s"] = round(sum(r["driver_python"] + r["python_workers"] + r["jvm"] - r["jvm_jit"]
                                                   - r["jvm_gc"] for r in rounds) / max(len(rounds), 1), 4)
    for key in ("query_thread", "tasks"):
        result[f"mean_cpu_jvm_{key}_s"] = round(sum(r[f"jvm_{key}"] for r in rounds) / max(len(rounds), 1), 4)
    # Per event of a round (its background events and the probe's one): the figure to compare groups by.
    result["job_cpu_us_per_event"] = round(1e6 * (result["job_cpu_s"] or 0.0) / (args.events + 1), 2)
    for key in (*parts, "emulator"):
        result[f"cpu_{key}_s"] = _median([r[key] - idle[key] * r["wall_s"] for r in rounds])
    for key in ("jobs", "stages", "tasks", "task_cpu_s", "task_run_s", "source_records_read", "source_scans",
                "shuffle_records_written", "shuffle_mb_written", "shuffle_records_read"):
        result[f"spark_{key}"] = _median([c[key] for c in kept])
    result["trigger_s"] = _median([p["durationMs"].get("triggerExecution", 0) / 1000 for p in progress
                                   if int(p["batchId"]) in measured])
    for phase in sorted({k for p in progress for k in p["durationMs"]}):
        result[f"phase_{phase}_s"] = _median([p["durationMs"].get(phase, 0) / 1000 for p in progress
                                              if int(p["batchId"]) in measured])
    for lap in sorted({k for e in engine for k in e.get("seconds", {})}):
        result[f"body_{lap}"] = _median([e["seconds"].get(lap, 0.0) for e in engine])
    result["writer_s"] = _median([e["seconds"] for e in writes])
    result["writer_calls_s"] = _median([e["write_seconds"] for e in writes if e.get("write_seconds") is not None])
    if jfr_file is not None:
        result["jfr"] = {"file": str(jfr_file), **jfr_phases.phases(jfr_file, len(measured)),
                         "jit": jfr_phases.compilations(jfr_file, len(measured))}
    if args.trace_lookups:
        for caller, count in calls.callers.most_common(40):
            print(f"{count:6d} {caller}")
    print(json.dumps(result, indent=1), flush=True)
    params = {"groups": args.groups, "shape": args.shape, "whole_rounds": args.whole_rounds, "batches": args.batches,
              "warmup": args.warmup, "events": args.events, "entities": args.entities,
              "trigger": args.trigger, "spark_conf": args.spark_conf,
              "driver_write_max_records": args.driver_write_max_records, "master": "local[2]",
              "jfr": args.jfr is not None}
    write_results("batch_cost", params, [], result, machine_description=machine_line, results_dir=args.results_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
