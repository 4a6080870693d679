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


def start(jvm: Any) -> Any:
    """A recording of the running JVM with the JDK's `profile` settings, started now."""
    recording = jvm.jdk.jfr.Recording(jvm.jdk.jfr.Configuration.getConfiguration("profile"))
    recording.start()
    return recording


def stop(jvm: Any, recording: Any, path: Path) -> Path:
    recording.stop()
    recording.dump(jvm.java.io.File(str(path)).toPath())
    recording.close()
    return path


def _samples(recording: Path) -> list[dict[str, Any]]:
    tool = shutil.which("jfr")
    if tool is None:
        raise RuntimeError("the JDK's `jfr` tool is not on PATH")
    out = subprocess.run([tool, "print", "--json", "--stack-depth", "4096", "--events", "jdk.ExecutionSample",
                          str(recording)], capture_output=True, text=True, check=True).stdout
    return list(json.loads(out)["recording"]["events"])


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
