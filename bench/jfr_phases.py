"""Where the driver JVM's time goes in a micro-batch: a JFR recording's samples by phase of Spark.

`bench/batch_cost.py --jfr DIR` records the driver JVM (local mode: driver and executor) with
JFR over the measured rounds only (a recording started and dumped through py4j) and reads it with
the JDK's `jfr` tool. Samples are counted per micro-batch by thread group (the query's own thread,
which also runs the foreachBatch body's py4j calls: py4j pins them to the calling thread; the
executor's tasks; ...) and, within the query's thread, as shares by the phase of Spark's
micro-batch they fall in (a sample counts in every phase its stack passes through). The JVM must
keep deep stacks (`STACK_OPTION`: JFR's default of 64 frames cuts Catalyst's recursion off before
the phase frames).
"""

from __future__ import annotations

import collections
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

# The driver JVM's option for deep stacks in recordings (a launch option: see the module doc).
STACK_OPTION = "-XX:FlightRecorderOptions:stackdepth=2048"

THREADS = (
    ("query_thread", re.compile(r"^stream execution thread")),
    ("tasks", re.compile(r"^Executor task launch worker")),
    ("py4j_other", re.compile(r"^Thread-\d+$")),
    ("arrow_server", re.compile(r"^serve-Arrow")),
    ("scheduler", re.compile(r"^dag-scheduler-event-loop|^task-result-getter")),
)

# Phases of the query's thread: a sample counts where its stack has a frame matching the pattern.
PHASES = (
    # MicroBatchExecution's queryPlanning: the batch's IncrementalExecution optimised and planned.
    ("query_planning", r"MicroBatchExecution\.\$anonfun\$runBatch\$\d+\n.*QueryExecution\.executedPlan$"),
    ("query_planning.optimizer", r"MicroBatchExecution\.\$anonfun\$runBatch\$\d+\n.*QueryExecution\.executedPlan\n"
                                 r"(?:.*\n)*?.*IncrementalExecution\.\$anonfun\$optimizedPlan\$1$"),
    # addBatch's SQL execution; its listener event carries the plan's description, and for a
    # streaming plan Spark 3.5's explainString plans a brand-new IncrementalExecution to describe it.
    ("add_batch", r"ForeachBatchSink\.addBatch$"),
    ("add_batch.to_rdd", r"QueryExecution\.toRdd\$lzycompute$"),
    ("add_batch.to_rdd.codegen", r"WholeStageCodegenExec\.doCodeGen$"),
    ("add_batch.to_rdd.state_rdd", r"StateStoreRDD\.<init>$"),
    ("add_batch.python_body", r"PythonForeachBatchHelper"),
    ("listener_plan_description", r"QueryExecution\.explainString$"),
    ("listener_plan_description.replanning", r"QueryExecution\.explainString$.*\n(?:.*\n)*?"
                                             r".*IncrementalExecution\.optimizedPlan\$lzycompute$"),
    ("listener_plan_info", r"SparkPlanInfo\$\.fromSparkPlan$"),
    ("janino_compile", r"CodeGenerator\$\.doCompile$"),
    ("offset_and_commit_logs", r"HDFSMetadataLog|OffsetSeqLog|CommitLog"),
    ("latest_offset", r"KafkaMicroBatchStream|KafkaOffsetReader"),
)


def start(jvm: Any, *, compilations: bool = False) -> Any:
    """A recording of the running JVM with the JDK's `profile` settings, started now; `compilations`:
    every JIT compilation too (the profile keeps only those over 100 ms), for `compilations`."""
    recording = jvm.jdk.jfr.Recording(jvm.jdk.jfr.Configuration.getConfiguration("profile"))
    if compilations:
        recording.enable("jdk.Compilation").withThreshold(jvm.java.time.Duration.ofMillis(0))
        recording.enable("jdk.Deoptimization")
    recording.start()
    return recording


def stop(jvm: Any, recording: Any, path: Path) -> Path:
    recording.stop()
    recording.dump(jvm.java.io.File(str(path)).toPath())
    recording.close()
    return path


def _samples(recording: Path, event: str = "jdk.ExecutionSample", depth: int = 4096) -> list[dict[str, Any]]:
    tool = shutil.which("jfr")
    if tool is None:
        raise RuntimeError("the JDK's `jfr` tool is not on PATH")
    out = subprocess.run([tool, "print", "--json", "--stack-depth", str(depth), "--events", event,
                          str(recording)], capture_output=True, text=True, check=True).stdout
    return list(json.loads(out)["recording"]["events"])


def _kind(type_name: str) -> str:
    """Who a compiled method belongs to, coarsely (Spark's generated classes apart)."""
    name = type_name.replace("/", ".")
    if "GeneratedClass" in name or name.startswith("org.apache.spark.sql.catalyst.expressions.Generated"):
        return "spark_generated"
    for prefix, label in (("io.featurestream", "engine"), ("org.apache.spark.sql.catalyst", "spark_catalyst"),
                          ("org.apache.spark.sql.execution.streaming", "spark_streaming"),
                          ("org.apache.spark.sql", "spark_sql"), ("org.apache.spark", "spark_core"),
                          ("org.apache.kafka", "kafka"), ("org.apache.datasketches", "datasketches"),
                          ("org.rocksdb", "rocksdb"), ("scala.", "scala"), ("py4j", "py4j"),
                          ("com.fasterxml", "jackson"), ("org.codehaus.janino", "janino"),
                          ("org.codehaus.commons", "janino"), ("java.", "jdk"), ("javax.", "jdk"),
                          ("jdk.", "jdk"), ("sun.", "jdk"), ("org.apache.hadoop", "hadoop")):
        if name.startswith(prefix):
            return label
    return "other"


def compilations(recording: Path, batches: int, top: int = 25) -> dict[str, Any]:
    """The recording's JIT compilations and deoptimisations per micro-batch: by owner (`_kind`), by
    tier, and the methods compiled most often and those with the largest code."""
    events = _samples(recording, "jdk.Compilation", 1)
    by_kind: collections.Counter[str] = collections.Counter()
    by_level: collections.Counter[str] = collections.Counter()
    per_method: collections.Counter[str] = collections.Counter()
    size: dict[str, int] = {}
    millis = 0.0
    for event in events:
        values = event["values"]
        method = values["method"]
        owner = method["type"]["name"].replace("/", ".")
        name = f"{owner}.{method['name']}"
        by_kind[_kind(owner)] += 1
        by_level[f"tier{values.get('compileLevel')}"] += 1
        per_method[name] += 1
        size[name] = max(size.get(name, 0), int(values.get("codeSize") or 0))
        duration = str(values.get("duration") or "0")
        millis += _millis(duration)
    deopts = _samples(recording, "jdk.Deoptimization", 1)
    deopt_methods: collections.Counter[str] = collections.Counter()
    deopt_reasons: collections.Counter[str] = collections.Counter()
    for event in deopts:
        values = event["values"]
        method = values["method"]
        deopt_methods[f"{method['type']['name'].replace('/', '.')}.{method['name']}"] += 1
        deopt_reasons[f"{values.get('reason')}/{values.get('action')}"] += 1
    per = max(batches, 1)
    return {
        "compilations_per_batch": round(len(events) / per, 1),
        "compile_ms_per_batch": round(millis / per, 1),
        "by_owner_per_batch": {k: round(v / per, 1) for k, v in by_kind.most_common()},
        "by_tier_per_batch": {k: round(v / per, 1) for k, v in by_level.most_common()},
        "most_compiled": dict(per_method.most_common(top)),
        "largest": dict(sorted(size.items(), key=lambda kv: -kv[1])[:top]),
        "deoptimizations_per_batch": round(len(deopts) / per, 1),
        "deopt_reasons": dict(deopt_reasons.most_common(top)),
        "deopt_methods": dict(deopt_methods.most_common(top)),
    }


def _millis(duration: str) -> float:
    """A JFR duration as printed (`12.3 ms`, `450 us`, `1.2 s`, ISO `PT0.012S`) in milliseconds."""
    text = duration.strip()
    if text.startswith("PT") and text.endswith("S"):
        return float(text[2:-1]) * 1000
    number, _, unit = text.partition(" ")
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1000.0}.get(unit, 1.0)
    try:
        return float(number) * scale
    except ValueError:
        return 0.0


def phases(recording: Path, batches: int) -> dict[str, Any]:
    """The recording's samples per micro-batch by thread group, and the query thread's phases as
    shares of its samples."""
    threads: collections.Counter[str] = collections.Counter()
    phase: collections.Counter[str] = collections.Counter()
    # Janino compiling generated code, on any thread: ~0 a batch when every batch's code is the
    # same as the last one's (Spark's code cache); a literal that changes per batch compiles anew.
    compiling = 0
    patterns = [(name, re.compile(rx, re.MULTILINE)) for name, rx in PHASES]
    for event in _samples(recording):
        values = event["values"]
        thread = values.get("sampledThread") or {}
        name = thread.get("javaName") or thread.get("osName") or ""
        group = next((label for label, rx in THREADS if rx.search(name)), "other")
        threads[group] += 1
        # Outermost frame first, one per line: a phase's pattern may span frames.
        stack = "\n".join(f["method"]["type"]["name"].replace("/", ".") + "." + f["method"]["name"]
                          for f in reversed(values["stackTrace"]["frames"]))
        compiling += ".CodeGenerator$.doCompile\n" in stack + "\n"
        if group != "query_thread":
            continue
        for label, rx in patterns:
            if rx.search(stack):
                phase[label] += 1
    total = sum(threads.values())
    query = threads["query_thread"]
    return {
        "samples": total,
        "samples_per_batch_by_thread": {k: round(v / max(batches, 1), 1) for k, v in threads.most_common()},
        "code_compile_samples_per_batch": round(compiling / max(batches, 1), 1),
        "query_thread_share_by_phase": {label: round(phase[label] / max(query, 1), 3) for label, _ in PHASES},
    }
