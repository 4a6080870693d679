"""`make reliability`: the streaming job survives what production throws at it; figures in
bench/results/reliability.json.

Every scenario drives the real job (`featurestream stream` as a subprocess) against real services
started here, privately (a Kafka broker from the local stack in its own state folder and ports, a
Feature Store emulator per scenario with its offline store on disk), and checks the online store
with GetRecord against the independent DuckDB oracle of the engine (tests/integration/oracle.py).
Per scenario the JSON has `lost` and `wrong` (must be 0) next to the counts in, written, DLQ, late.

1. kill9: kill -9 of the job (driver JVM and Python workers with it) at 5 random points of a
   100k-event run, restarted each time;
2. restarts: the Kafka broker and then the Feature Store emulator restarted (SIGKILL) mid-run; the
   job recovers by itself (no restart of the job, no manual step) and catches up;
3. faults: 20% throttling + 1% 5xx for the whole run; the same events without faults as baseline
   (baseline, faults, faults, baseline);
4. malformed: 11 classes of bad input mixed into a valid stream; each must land where documented
   (DLQ with a reason, late sink, online-store DLQ, dropped as a duplicate, or used as valid);
   the counts reconcile: in = aggregated + duplicates + late + filtered + DLQ;
5. compaction: the offline-store compaction killed mid-write (Spark's task files on disk), then
   re-run: output identical to a clean run's and to the DuckDB oracle's;
6. poison: while the job runs, a record with EventTime 9999-12-31 is written through PutRecord for
   one of its cards (and a 3 KB record identifier is tried): the job goes on, every other card
   matches the oracle, offline replication is not blocked, the counts reconcile;
7. retention: Kafka deletes unread records (DeleteRecords, as retention does) between two runs:
   with `kafka.fail_on_data_loss: true` the job exits 1 with one line, at once; with false it goes
   on and counts exactly the deleted records (`featurestream_events_lost_total`):
   in = aggregated + DLQ + late + lost;
8. big_messages: 10 MB messages (a topic whose max.message.bytes allows them) mixed into a valid
   stream: each goes to the DLQ with `value too large`, the job goes on.

    python bench/reliability.py [--only kill9,faults] [--events 100000] [--keep]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pyarrow.parquet as pq
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from common import Pair, write_results  # noqa: E402

from featurestream.config import load_feature_group, load_profile  # noqa: E402
from featurestream.connectors.provisioning import ensure_feature_group  # noqa: E402
from featurestream.dev.feature_store import EmulatorProcess  # noqa: E402
from featurestream.dev.generator import (  # noqa: E402
    GeneratorSettings,
    delete_records_before,
    encode,
    ensure_topic,
    generate_events,
    produce_kafka,
    recent_start,
)
from tests.compaction import oracle as compaction_oracle  # noqa: E402
from tests.compaction.data import local_files  # noqa: E402
from tests.ops.job import JobProcess, batch_ids, job_env  # noqa: E402
from tests.ops.online import compare_online  # noqa: E402

SCENARIOS = ("kill9", "restarts", "faults", "malformed", "compaction", "poison", "retention", "big_messages")
REGION = "us-east-1"
Record = tuple[bytes | None, bytes]


# `--ports 22120-22199`: every service port of the run comes from this range (a machine shared with
# other runs); without it the OS picks free ports.
_PORT_RANGE: list[int] = []
_RANGE_GIVEN = False


def free_port() -> int:
    while _PORT_RANGE:
        port = _PORT_RANGE.pop(0)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    if _RANGE_GIVEN:
        raise RuntimeError("--ports: no free port left in the range")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])



def log(message: str) -> None:
    print(f"[{datetime.now(UTC).strftime('%H:%M:%S')}] {message}", flush=True)


# --- services ----------------------------------------------------------------------------------

@dataclass
class Kafka:
    """A private broker of the local stack: its own state folder and ports; stopped by us."""

    state: Path
    port: int = field(default_factory=free_port)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _env(self) -> None:
        os.environ.update({"FEATURESTREAM_STATE_DIR": str(self.state), "FEATURESTREAM_KAFKA_PORT": str(self.port),
                           "FEATURESTREAM_KAFKA_CONTROLLER_PORT": str(self.controller_port)})

    def __post_init__(self) -> None:
        self.controller_port = free_port()

    def up(self) -> None:
        from featurestream.dev.stack import manager

        self._env()
        manager.up(["kafka"])

    def down(self) -> None:
        from featurestream.dev.stack import manager

        self._env()
        manager.down(["kafka"])


def emulator(work: Path, **faults: Any) -> EmulatorProcess:
    return EmulatorProcess(work / "emulator", port=free_port() if _RANGE_GIVEN else None,
                           offline_local_dir=work / "offline", flush_interval_s=3600, seed=7, **faults).start()


# --- a scenario's job --------------------------------------------------------------------------

@dataclass
class Setup:
    work: Path
    kafka: Kafka
    emu: EmulatorProcess
    group_file: Path
    profile_file: Path
    spec: Any
    runs: list[JobProcess] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        return job_env({"AWS_ENDPOINT_URL_SAGEMAKER": self.emu.url,
                        "AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME": self.emu.url,
                        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION})

    def job(self, *extra: str) -> JobProcess:
        run = JobProcess(["--feature-group", str(self.group_file), "--env", str(self.profile_file), *extra],
                         self.work / f"run{len(self.runs) + 1}", env=self.env())
        self.runs.append(run)
        return run.start()

    @property
    def checkpoint(self) -> Path:
        return self.work / "checkpoints" / self.spec.name / "features"

    @property
    def dlq(self) -> Path:
        return self.work / "dlq" / self.spec.name

    def engine_totals(self) -> dict[str, int]:
        """The engine's per-batch counters of every run, summed (replayed batches counted once)."""
        by_batch: dict[int, dict[str, int]] = {}
        for run in self.runs:
            for event in run.events():
                if event.get("event") == "engine_batch":
                    by_batch[int(event["batch_id"])] = {k: int(event.get(k, 0)) for k in
                                                        ("aggregated", "duplicates", "late_events", "records")}
        totals = {"aggregated": 0, "duplicates": 0, "late_events": 0, "records": 0, "batches": len(by_batch)}
        for counters in by_batch.values():
            for key, value in counters.items():
                totals[key] += value
        return totals


def prepare(name: str, base: Path, kafka: Kafka, emu: EmulatorProcess, *, max_offsets: int,
            partitions: int = 2, topic_configs: dict[str, str] | None = None) -> Setup:
    work = base / name
    work.mkdir(parents=True, exist_ok=True)
    suffix = uuid.uuid4().hex[:6]
    group = yaml.safe_load((ROOT / "conf/feature_groups/card_activity.yaml").read_text())
    group["source"]["topic"] = f"rel-{name}-{suffix}"
    group["online_store"]["feature_group_name"] = f"rel-{name}-{suffix}"
    group_file = work / "card_activity.yaml"
    group_file.write_text(yaml.safe_dump(group))
    profile_file = work / "profile.yaml"
    profile_file.write_text(yaml.safe_dump({
        "kind": "local",
        "kafka": {"bootstrap_servers": kafka.bootstrap, "max_offsets_per_trigger": max_offsets},
        "feature_store": {"region": REGION, "offline_store_s3_uri": f"s3://reliability/{name}",
                          "role_arn": "arn:aws:iam::123456789012:role/featurestream-local",
                          # Long enough for an emulator restart inside one batch's retries.
                          "batch_timeout_s": 180.0},
        "spark": {"master": "local[2]", "shuffle_partitions": 2, "trigger_interval": "1 second",
                  "conf": {"spark.ui.showConsoleProgress": "false"}},
        "checkpoint_root": str(work / "checkpoints"),
        "dlq_path": str(work / "dlq"),
        "metrics": {"port": 0, "textfile": str(work / "metrics.prom")},
        "lineage": {"file": str(work / "lineage.jsonl")},
        "recovery": {"max_restarts": 10, "window": "1h", "backoff": "2s", "backoff_max": "20s"},
    }))
    spec = load_feature_group(group_file)
    sagemaker = boto3.client("sagemaker", endpoint_url=emu.url, region_name=REGION)
    ensure_feature_group(sagemaker, spec, load_profile(profile_file))
    ensure_topic(kafka.bootstrap, spec.source.topic, partitions=partitions, configs=topic_configs)
    return Setup(work, kafka, emu, group_file, profile_file, spec)


def sink_files(folder: Path) -> list[Path]:
    """The files a streaming file sink committed (its `_spark_metadata` log), or, for batch writes,
    every visible Parquet file: a killed run can leave uncommitted part files behind."""
    log_dir = folder / "_spark_metadata"
    if not log_dir.is_dir():
        return sorted(p for p in folder.rglob("*.parquet") if not any(x.startswith((".", "_")) for x in p.parts))
    entries: dict[str, str] = {}
    for entry in sorted(log_dir.iterdir(), key=lambda p: int(p.name.split(".")[0]) if p.name[0].isdigit() else -1):
        if not entry.name[0].isdigit():
            continue
        for line in entry.read_text().splitlines()[1:]:
            item = json.loads(line)
            entries[item["path"]] = item["action"]
    return sorted(Path(path.removeprefix("file://")) for path, action in entries.items() if action == "add")


def parquet_rows(folder: Path) -> list[dict[str, Any]]:
    """The rows of a sink's committed files; a DLQ payload kept as base64 (bytes that are not
    UTF-8) is decoded back to its exact bytes in `payload_bytes`."""
    files = sink_files(folder)
    rows: list[dict[str, Any]] = []
    for path in files:
        for row in pq.read_table(path).to_pylist():
            if row.get("payload_encoding") == "base64" and row.get("payload") is not None:
                row["payload_bytes"] = base64.b64decode(row["payload"])
            elif isinstance(row.get("payload"), str):
                row["payload_bytes"] = row["payload"].encode()
            rows.append(row)
    return rows


def online_check(setup: Setup, events: list[dict[str, Any]]) -> dict[str, Any]:
    expected, missing, wrong = compare_online(setup.spec, events, endpoint=setup.emu.url)
    return {"entities_expected": expected, "entities_written": expected - len(missing), "lost": len(missing),
            "wrong": len(wrong), "wrong_examples": [w[0] for w in wrong[:3]], "lost_examples": missing[:3]}


# One start for the whole run (every scenario's events end before it is over): the group's 7-day
# TTL counts from now, so a fixed date would expire every record it writes a week later.
START = recent_start(3 * 3600)


def settings(entities: int, seed: int, rate: float, malformed: float = 0.0) -> GeneratorSettings:
    return GeneratorSettings(entities=entities, seed=seed, events_per_second=rate,
                             start=START, malformed_rate=malformed)


def committed_offsets(checkpoint: Path) -> dict[str, int]:
    """partition → end offset of the newest committed batch (the offset log's source line)."""
    committed = batch_ids(checkpoint, "commits")
    if not committed:
        return {}
    lines = (checkpoint / "offsets" / str(max(committed))).read_text().splitlines()
    offsets: dict[str, int] = {}
    for line in lines[2:]:
        for partitions in json.loads(line).values():
            offsets.update({str(k): int(v) for k, v in partitions.items()})
    return offsets


def wait_until(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.5) -> float:
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if condition():
            return time.monotonic() - began
        time.sleep(poll)
    raise TimeoutError(f"{what}: not within {timeout:.0f}s")


# --- 1. kill -9 --------------------------------------------------------------------------------

def scenario_kill9(base: Path, kafka: Kafka, events_total: int, kills: int = 5) -> dict[str, Any]:
    with running_emulator(base / "kill9") as emu:
        # ~40 micro-batches: room for 5 kill points between 5% and 95% of the events.
        setup = prepare("kill9", base, kafka, emu, max_offsets=max(1000, events_total // 40), partitions=4)
        events = generate_events(events_total, settings(entities=1000, seed=21, rate=100.0))
        log(f"kill9: producing {len(events)} events")
        produce_kafka(list(encode(events, settings(1000, 21, 100.0))), kafka.bootstrap, setup.spec.source.topic)
        rng = random.Random(99)
        # The kill points, spread over the run: once this many events are committed, plus a
        # random moment (inside a batch: state, sink writes, offset or commit log; or between two).
        targets = sorted(int(rng.uniform(0.05, 0.95) * len(events)) for _ in range(kills))
        points = []
        name = f"{setup.spec.name}-features"
        for index, target in enumerate(targets):
            job = setup.job()
            # Each run makes progress (one batch of its own) before it dies.
            job.wait_for(lambda e: e.get("event") == "batch_progress" and e.get("query") == name
                         and e.get("input_rows", 0) > 0, 900)
            wait_until(functools.partial(_committed_or_exited, setup.checkpoint, job, target), 900,
                       f"kill9: {target} events committed")
            delay = rng.uniform(0.0, 1.5)
            time.sleep(delay)
            pending = batch_ids(setup.checkpoint, "offsets") - batch_ids(setup.checkpoint, "commits")
            job.kill_group()
            committed = sum(committed_offsets(setup.checkpoint).values())
            points.append({"target_events": target, "delay_s": round(delay, 1),
                           "batches_committed": len(batch_ids(setup.checkpoint, "commits")),
                           "batch_in_flight": max(pending) if pending else None,
                           "events_committed": committed, "during_run": committed < len(events)})
            log(f"kill9: kill -9 #{index + 1}: {points[-1]}")
        began = time.monotonic()
        final = setup.job("--available-now")
        rc = final.wait(3600)
        drain_s = time.monotonic() - began
        result = online_check(setup, events)
        totals = setup.engine_totals()
        dlq = len(parquet_rows(setup.dlq / "events"))
        return {"in": len(events), "written": result["entities_written"], "dlq": dlq,
                "late": totals["late_events"], **result, "kills": points, "final_exit_code": rc,
                "aggregated_events": totals["aggregated"], "batches": totals["batches"],
                "final_run_s": round(drain_s, 1), "ok": rc == 0 and result["lost"] == 0 and result["wrong"] == 0
                and totals["aggregated"] == len(events) and all(p["during_run"] for p in points)}


def _committed_or_exited(checkpoint: Path, job: Any, target: int) -> bool:
    if job.proc.poll() is not None:
        raise RuntimeError(f"kill9: the job exited ({job.proc.returncode}) before it was killed")
    return sum(committed_offsets(checkpoint).values()) >= target


@contextmanager
def running_emulator(work: Path, **faults: Any) -> Iterator[EmulatorProcess]:
    work.mkdir(parents=True, exist_ok=True)
    emu = emulator(work, **faults)
    try:
        yield emu
    finally:
        emu.stop()


# --- 2. broker and emulator restarts -----------------------------------------------------------

def scenario_restarts(base: Path, kafka: Kafka, events_total: int) -> dict[str, Any]:
    with running_emulator(base / "restarts") as emu:
        setup = prepare("restarts", base, kafka, emu, max_offsets=max(500, events_total // 20), partitions=2)
        gen = settings(entities=300, seed=5, rate=20.0)
        events = generate_events(events_total, gen)
        records = list(encode(events, gen))
        half = len(records) // 2
        produce_kafka(records[:half], kafka.bootstrap, setup.spec.source.topic)
        job = setup.job()
        outages: dict[str, Any] = {}
        try:
            name = f"{setup.spec.name}-features"
            job.wait_for(lambda e: e.get("event") == "batch_progress" and e.get("query") == name
                         and e.get("input_rows", 0) > 0, 600)
            log("restarts: stopping the Kafka broker mid-run")
            down_at = time.monotonic()
            kafka.down()
            time.sleep(5)
            kafka.up()
            outages["kafka_down_s"] = round(time.monotonic() - down_at, 1)
            back = time.time()
            produce_kafka(records[half:], kafka.bootstrap, setup.spec.source.topic)
            # The job writes again after the broker's return: now take the Feature Store away mid-write.
            job.wait_for(lambda e: e.get("event") == "online_store_batch" and iso(e["ts"]) > back, 600)
            log("restarts: killing the Feature Store emulator mid-run (SIGKILL), then starting it again")
            down_at = time.monotonic()
            emu.kill()
            # Longer than the writer's retries last (8 attempts, back-off capped at 2 s): the batch
            # fails and the job restarts its queries from the checkpoint by itself.
            time.sleep(20)
            emu.start()
            outages["emulator_down_s"] = round(time.monotonic() - down_at, 1)
            ends = end_offsets(kafka.bootstrap, setup.spec.source.topic)
            outages["caught_up_after_s"] = round(wait_until(
                lambda: committed_offsets(setup.checkpoint) == ends, 1200, "the job catching up"), 1)
            job.signal(signal.SIGTERM)
            rc = job.wait(600)
        finally:
            job.stop_if_running()
        failures = [e for e in job.events() if e.get("event") == "query_failed"]
        result = online_check(setup, events)
        totals = setup.engine_totals()
        return {"in": len(events), "written": result["entities_written"],
                "dlq": len(parquet_rows(setup.dlq / "events")), "late": totals["late_events"], **result,
                **outages, "job_exit_code": rc, "job_runs": len(setup.runs),
                "query_restarts": len(failures), "failures": [f["error"][:200] for f in failures],
                "aggregated_events": totals["aggregated"],
                "ok": rc == 0 and len(setup.runs) == 1 and result["lost"] == 0 and result["wrong"] == 0}


def iso(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def end_offsets(bootstrap: str, topic: str) -> dict[str, int]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return {str(tp.partition): int(offset) for tp, offset in consumer.end_offsets(partitions).items()}
    finally:
        consumer.close()


# --- 3. throttling and 5xx ---------------------------------------------------------------------

def run_once(base: Path, name: str, kafka: Kafka, events: list[dict[str, Any]], gen: GeneratorSettings,
             **faults: Any) -> tuple[Setup, dict[str, Any], float, int, dict[str, Any]]:
    with running_emulator(base / name, **faults) as emu:
        setup = prepare(name, base, kafka, emu, max_offsets=max(500, len(events) // 8), partitions=2)
        produce_kafka(list(encode(events, gen)), kafka.bootstrap, setup.spec.source.topic)
        began = time.monotonic()
        rc = setup.job("--available-now").wait(3600)
        seconds = time.monotonic() - began
        health = emu.health()
        # Read back without faults: the check must not be throttled itself.
        emu.restart(throttle_rate=0.0, error_rate=0.0)
        result = online_check(setup, events)
        emu.flush()
    return setup, result, seconds, rc, health


def writer_totals(setup: Setup) -> dict[str, int]:
    totals = {"calls": 0, "retries": 0, "throttles": 0, "records_written": 0, "dlq": 0}
    for run in setup.runs:
        for event in run.events():
            if event.get("event") == "online_store_batch":
                for key in totals:
                    totals[key] += int(event.get(key) or 0)
    return totals


def scenario_faults(base: Path, kafka: Kafka, events_total: int) -> tuple[dict[str, Any], list[Pair]]:
    """Baseline, faults, faults, baseline (ABBA): the machine's load drifts during a run of minutes,
    and the order cancels a steady drift that a single pair would put on one side."""
    gen = settings(entities=500, seed=8, rate=30.0)
    events = generate_events(events_total, gen)
    faults = {"throttle_rate": 0.2, "error_rate": 0.01}
    runs: dict[str, list[tuple[Setup, dict[str, Any], float, int, dict[str, Any]]]] = {"clean": [], "faults": []}
    for index, side in enumerate(("clean", "faults", "faults", "clean")):
        name = f"faults-{'baseline-' if side == 'clean' else ''}{index + 1}"
        runs[side].append(run_once(base, name, kafka, events, gen, **(faults if side == "faults" else {})))
    setup, result, _, rc, health = runs["faults"][0]
    fault_s = [r[2] for r in runs["faults"]]
    clean_s = [r[2] for r in runs["clean"]]
    writes = [writer_totals(r[0]) for r in runs["faults"]]
    totals = setup.engine_totals()
    pair = Pair(f"events/s with 20% throttling + 1% 5xx vs no faults ({events_total} events, --available-now, "
                "ABBA order, 2 runs a side)",
                ours=2 * events_total / sum(fault_s), baseline=2 * events_total / sum(clean_s), unit="events/s")
    every = [r[1] for side in runs.values() for r in side]
    return {"in": len(events), "written": result["entities_written"], "dlq": writes[0]["dlq"],
            "late": totals["late_events"], **result, "exit_code": rc,
            "seconds": [round(x, 1) for x in fault_s], "baseline_seconds": [round(x, 1) for x in clean_s],
            "lost_all_runs": sum(r["lost"] for r in every), "wrong_all_runs": sum(r["wrong"] for r in every),
            "calls": writes[0]["calls"], "retries": writes[0]["retries"], "throttles": writes[0]["throttles"],
            "records_written": writes[0]["records_written"], "emulator_faults_injected": health.get("faults_injected"),
            "ok": all(r[3] == 0 for side in runs.values() for r in side)
            and all(r["lost"] == 0 and r["wrong"] == 0 for r in every)
            and all(w["dlq"] == 0 and w["throttles"] > 0 for w in writes)}, [pair]


# --- 4. malformed input ------------------------------------------------------------------------

PER_CLASS = 10
# class → where it must end up, and the texts one of which its DLQ reason must contain.
# (docs/operations.md, "Malformed input", says the same.)
EXPECTED: dict[str, tuple[str, tuple[str, ...]]] = {
    "invalid_json": ("dlq", ("malformed JSON",)),
    "wrong_types": ("dlq", ("wrong type",)),
    "missing_key": ("dlq", ("missing entity key",)),
    # A string that cannot be a timestamp makes the JSON record itself fail to parse.
    "bad_event_time": ("dlq", ("event time", "wrong type")),
    # A clock far ahead would drag the watermark along and make every later event late.
    "far_future": ("dlq", ("future",)),
    "far_past": ("late", ()),
    # 400 KB in a string field: more than any online record could hold (source.max_string_bytes).
    "oversize": ("dlq", ("value too large",)),
    # Kept as base64 in the DLQ: the payload's exact bytes come back (checked in `classify`).
    "invalid_utf8": ("dlq", ("invalid UTF-8",)),
    "unknown_fields": ("aggregated", ()),
    # NaN/Infinity would poison every sum and mean over the window.
    "nan_infinity": ("dlq", ("finite",)),
    "duplicates": ("deduplicated", ()),
}


def _bad(kind: str, index: int, when: str) -> Record:
    marker = f"mal-{kind}-{index}"
    base = {"transaction_id": marker, "card_id": marker, "merchant_id": "merchant-001", "amount": 10.0,
            "currency": "EUR", "event_time": when}
    if kind == "invalid_json":
        return None, json.dumps(base).encode()[:-12]
    if kind == "wrong_types":
        return None, json.dumps({**base, "amount": "lots"}).encode()
    if kind == "missing_key":
        return None, json.dumps({k: v for k, v in base.items() if k != "card_id"}).encode()
    if kind == "bad_event_time":
        body = {k: v for k, v in base.items() if k != "event_time"} if index % 2 else {**base, "event_time": "soon"}
        return None, json.dumps(body).encode()
    if kind == "far_future":
        return None, json.dumps({**base, "event_time": "2099-01-01T00:00:00.000Z"}).encode()
    if kind == "far_past":
        return None, json.dumps({**base, "event_time": "2001-01-01T00:00:00.000Z"}).encode()
    if kind == "oversize":
        return None, json.dumps({**base, "merchant_id": "m" * 400_000}).encode()
    if kind == "invalid_utf8":
        return None, b"\xff\xfe" + json.dumps(base).encode()
    if kind == "nan_infinity":
        token = "NaN" if index % 2 else "Infinity"
        return None, json.dumps(base).replace('"amount": 10.0', f'"amount": {token}').encode()
    raise ValueError(kind)


def malformed_stream(events: list[dict[str, Any]], gen: GeneratorSettings,
                     classes: list[str]) -> tuple[list[Record], dict[str, int]]:
    """The valid stream with every class mixed in at 40% of it (so the watermark exists), plus
    refunds (amount < 0) that the group's `filter: amount > 0` must drop."""
    valid = list(encode(events, gen))
    cut = int(len(valid) * 0.4)
    middle_time = str(events[cut]["event_time"])
    bad: list[Record] = []
    counts: dict[str, int] = {}
    for kind in classes:
        if kind in ("unknown_fields", "duplicates"):
            continue
        bad += [_bad(kind, i, middle_time) for i in range(PER_CLASS)]
        counts[kind] = PER_CLASS
    # Unknown fields on real events (they stay valid), duplicates of real events (same transaction).
    for i in range(PER_CLASS if "unknown_fields" in classes else 0):
        event = events[cut - 50 + i]
        extra = {**event, "unexpected": {"x": [1, 2]}, "v": 2}
        bad.append((str(event["card_id"]).encode(), json.dumps(extra).encode()))
        valid.remove((str(event["card_id"]).encode(), json.dumps(event).encode()))
    if "duplicates" in classes:
        bad += [valid[cut - 20 + i] for i in range(PER_CLASS)]
    refunds = [(None, json.dumps({**events[cut + i], "transaction_id": f"refund-{i}", "amount": -5.0}).encode())
               for i in range(PER_CLASS)]
    counts["filtered_refunds"] = PER_CLASS
    return valid[:cut] + bad + refunds + valid[cut:], counts


def scenario_malformed(base: Path, kafka: Kafka, classes: list[str]) -> dict[str, Any]:
    gen = settings(entities=60, seed=13, rate=5.0)
    events = generate_events(3000, gen)
    stream, counts = malformed_stream(events, gen, classes)
    with running_emulator(base / "malformed") as emu:
        setup = prepare("malformed", base, kafka, emu, max_offsets=300, partitions=2)
        produce_kafka(stream, kafka.bootstrap, setup.spec.source.topic)
        rc = setup.job("--available-now").wait(3600)
        result = online_check(setup, events)
        dlq = parquet_rows(setup.dlq / "events")
        late = parquet_rows(setup.dlq / "late")
        store_dlq = parquet_rows(setup.dlq / "online-store")
        totals = setup.engine_totals()
        runtime = boto3.client("sagemaker-featurestore-runtime", endpoint_url=emu.url, region_name=REGION)
        verdicts = {kind: classify(kind, [v for _, v in stream if f"mal-{kind}-".encode() in v], dlq, late,
                                   store_dlq, totals, runtime, setup.spec) for kind in classes}
    filtered = counts["filtered_refunds"]
    # in = aggregated + duplicates + late + filtered + DLQ, every term measured from the job's outputs.
    accounted = totals["aggregated"] + totals["duplicates"] + len(late) + filtered + len(dlq)
    return {"in": len(stream), "written": result["entities_written"], "dlq": len(dlq), "late": len(late),
            "online_store_dlq": len(store_dlq), "aggregated_events": totals["aggregated"],
            "deduplicated": totals["duplicates"], "filtered": filtered, "reconciled": accounted == len(stream),
            "unaccounted": len(stream) - accounted, **result, "exit_code": rc, "classes": verdicts,
            "ok": rc == 0 and result["lost"] == 0 and result["wrong"] == 0 and accounted == len(stream)
            and all(c["ok"] for c in verdicts.values())}


def classify(kind: str, sent: list[bytes], dlq: list[dict[str, Any]], late: list[dict[str, Any]],
             store_dlq: list[dict[str, Any]], totals: dict[str, int], runtime: Any, spec: Any) -> dict[str, Any]:
    marker = f"mal-{kind}-"
    where, reasons = EXPECTED[kind]
    in_dlq = [r for r in dlq if marker.encode() in (r.get("payload_bytes") or b"")]
    in_late = [r for r in late if str(r.get("transaction_id") or "").startswith(marker)]
    in_store_dlq = [r for r in store_dlq if str(r.get("record_identifier") or "").startswith(marker)]
    observed: dict[str, Any] = {"dlq": len(in_dlq), "late": len(in_late), "online_store_dlq": len(in_store_dlq)}
    if in_dlq:
        observed["reasons"] = sorted({r["reason"] for r in in_dlq})
    if kind not in ("unknown_fields", "duplicates", "missing_key"):
        online = 0
        for i in range(PER_CLASS):
            got = runtime.get_record(FeatureGroupName=spec.online_store.feature_group_name,
                                     RecordIdentifierValueAsString=f"{marker}{i}")
            online += bool(got.get("Record"))
        observed["online_records"] = online
    if where == "dlq":
        ok = len(in_dlq) == PER_CLASS and all(any(t in r["reason"] for t in reasons) for r in in_dlq)
        # Lossless: the DLQ gives back exactly the bytes that were sent.
        observed["payloads_identical"] = sorted(r["payload_bytes"] for r in in_dlq) == sorted(sent)
        ok = ok and observed["payloads_identical"]
    elif where == "late":
        ok = len(in_late) == PER_CLASS and not in_dlq
    elif where == "deduplicated":
        observed["deduplicated_total"] = totals["duplicates"]
        ok = totals["duplicates"] == PER_CLASS and not in_dlq
    else:  # aggregated: nowhere else, and online for their own entities (valid cards: the oracle)
        ok = not (in_dlq or in_late or in_store_dlq) and observed.get("online_records", PER_CLASS) == PER_CLASS
    return {"sent": PER_CLASS, "expected": where, "observed": observed, "ok": ok}


# --- 5. compaction killed mid-write ------------------------------------------------------------

def compaction_config(path: Path, output: Path, offline: Path, group: str) -> Path:
    path.write_text(yaml.safe_dump({
        "region": REGION, "output": str(output), "offline_local_root": str(offline),
        "feature_groups": [{"name": group}], "snapshot": True, "target_file_size": "64KB",
        "lock": {"stale_after": "4s", "heartbeat": "1s"}, "gc_grace": "0s",
        "spark": {"master": "local[2]", "shuffle_partitions": 2},
    }))
    return path


def compact(config: Path, env: dict[str, str], logs: Path, kill_when: Callable[[], bool] | None = None) -> int:
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "stdout.log").open("wb") as out, (logs / "stderr.log").open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "featurestream.cli", "compact", "--config", str(config),
                                 "--progress", "never"], cwd=ROOT, env=env, stdout=out, stderr=err,
                                start_new_session=True)
        while kill_when is not None and proc.poll() is None:
            if kill_when():
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        return proc.wait(timeout=1800)


@contextlib.contextmanager
def catalog_database(kafka: Kafka) -> Iterator[None]:
    """The local profile's Iceberg catalog (PostgreSQL of the stack) in the private state folder."""
    from featurestream.dev.stack import manager

    kafka._env()
    os.environ["FEATURESTREAM_POSTGRES_PORT"] = str(free_port())
    manager.up(["postgres"])
    try:
        yield
    finally:
        kafka._env()
        manager.down(["postgres"])


def scenario_compaction(base: Path, kafka: Kafka) -> dict[str, Any]:
    gen = settings(entities=400, seed=17, rate=20.0)
    events = generate_events(15_000, gen)
    with catalog_database(kafka), running_emulator(base / "compaction") as emu:
        setup = prepare("compaction", base, kafka, emu, max_offsets=2000, partitions=2)
        produce_kafka(list(encode(events, gen)), kafka.bootstrap, setup.spec.source.topic)
        rc = setup.job("--available-now").wait(3600)
        emu.flush()
        group = setup.spec.online_store.feature_group_name
        offline = setup.work / "offline"
        description = boto3.client("sagemaker", endpoint_url=emu.url, region_name=REGION).describe_feature_group(
            FeatureGroupName=group)
        source = offline / description["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"].removeprefix(
            "s3://")
        env = setup.env()
        clean_out, crash_out = setup.work / "compacted-clean", setup.work / "compacted-crash"
        clean_rc = compact(compaction_config(setup.work / "clean.yaml", clean_out, offline, group), env,
                           setup.work / "compact-clean")
        crash_config = compaction_config(setup.work / "crash.yaml", crash_out, offline, group)
        # Killed once Spark's Iceberg writer has written a data file, before the table's commit.
        killed_rc = compact(crash_config, env, setup.work / "compact-killed",
                            kill_when=lambda: any(crash_out.rglob("data/*/*.parquet")))
        temporary_left = any(crash_out.rglob("data/*/*.parquet"))
        time.sleep(5)  # the dead run's lock goes stale (lock.stale_after 4s)
        rerun_rc = compact(crash_config, env, setup.work / "compact-rerun")
    columns, expected = compaction_oracle.expected(local_files(source), record_id=setup.spec.entity.key,
                                                   event_time=setup.spec.event_time.field)
    (clean_root,) = compaction_oracle.table_folders(clean_out)
    (crash_root,) = compaction_oracle.table_folders(crash_out)
    clean_table, crash_table = compaction_oracle.table_at(clean_root), compaction_oracle.table_at(crash_root)
    clean_rows = compaction_oracle.compacted(clean_table, columns)
    crash_rows = compaction_oracle.compacted(crash_table, columns)
    expected_set, crash_set = set(expected), set(crash_rows)
    snapshots_equal = (compaction_oracle.snapshot(clean_table, clean_root, columns)
                       == compaction_oracle.snapshot(crash_table, crash_root, columns))
    return {"in": len(expected), "written": len(crash_rows), "dlq": 0, "late": 0,
            "lost": len(expected_set - crash_set), "wrong": len(crash_set - expected_set),
            "stream_exit_code": rc, "clean_exit_code": clean_rc, "killed_exit_code": killed_rc,
            "task_files_left_by_kill": temporary_left, "rerun_exit_code": rerun_rc,
            "identical_to_clean_run": crash_rows == clean_rows and snapshots_equal,
            "ok": killed_rc == -signal.SIGKILL and temporary_left and rerun_rc == 0 and clean_rc == 0
            and crash_rows == clean_rows == expected and snapshots_equal}


# --- 6. a poison record in the online store during a run ---------------------------------------

POISON_TIME = "9999-12-31T23:59:59Z"  # the last EventTime AWS accepts


def _engine_in(totals: dict[str, int], dlq: int, lost: int = 0) -> int:
    """Events accounted for: aggregated + duplicates + late + DLQ + lost (no filtered events: the
    generator's amounts are all positive)."""
    return totals["aggregated"] + totals["duplicates"] + totals["late_events"] + dlq + lost


def scenario_poison(base: Path, kafka: Kafka) -> dict[str, Any]:
    gen = settings(entities=100, seed=41, rate=10.0)
    events = generate_events(4000, gen)
    records = list(encode(events, gen))
    half = len(records) // 2
    poisoned = str(events[0]["card_id"])
    with running_emulator(base / "poison") as emu:
        setup = prepare("poison", base, kafka, emu, max_offsets=500, partitions=2)
        group = setup.spec.online_store.feature_group_name
        runtime = boto3.client("sagemaker-featurestore-runtime", endpoint_url=emu.url, region_name=REGION)
        produce_kafka(records[:half], kafka.bootstrap, setup.spec.source.topic)
        job = setup.job()
        try:
            wait_until(lambda: _committed_or_exited(setup.checkpoint, job, half), 900, "poison: the first half")
            log(f"poison: PutRecord {poisoned} at EventTime {POISON_TIME} while the job runs")
            runtime.put_record(FeatureGroupName=group, Record=[
                {"FeatureName": "card_id", "ValueAsString": poisoned},
                {"FeatureName": "event_time", "ValueAsString": POISON_TIME},
                {"FeatureName": "txn_count_5m", "ValueAsString": "999999999"},
                {"FeatureName": "amount_sum_5m", "ValueAsString": "1e300"}])
            try:  # an identifier over AWS's 2 KB: refused by the API, never stored
                runtime.put_record(FeatureGroupName=group, Record=[
                    {"FeatureName": "card_id", "ValueAsString": "c" * 3000},
                    {"FeatureName": "event_time", "ValueAsString": "2026-01-01T00:00:00Z"},
                    {"FeatureName": "txn_count_5m", "ValueAsString": "1"}])
                oversized = "accepted"
            except botocore.exceptions.ClientError as exc:
                oversized = f"refused: {exc.response['Error']['Code']}"
            produce_kafka(records[half:], kafka.bootstrap, setup.spec.source.topic)
            wait_until(lambda: _committed_or_exited(setup.checkpoint, job, len(records)), 900,
                       "poison: the second half")
            job.signal(signal.SIGTERM)
            rc = job.wait(600)
        finally:
            job.stop_if_running()
        failures = [e for e in job.events() if e.get("event") == "query_failed"]
        # SageMaker keeps the newest EventTime online: the poisoned card keeps the poison there
        # (the job's older records go to the offline store only); every other card is the oracle's.
        others = [e for e in events if e["card_id"] != poisoned]
        result = online_check(setup, others)
        held = {f["FeatureName"]: f["ValueAsString"]
                for f in runtime.get_record(FeatureGroupName=group, RecordIdentifierValueAsString=poisoned)["Record"]}
        flushed = emu.flush()
        health = emu.health()
        totals = setup.engine_totals()
        dlq = len(parquet_rows(setup.dlq / "events"))
        store_dlq = len(parquet_rows(setup.dlq / "online-store"))
    accounted = _engine_in(totals, dlq)
    return {"in": len(events), "written": result["entities_written"], "dlq": dlq, "late": totals["late_events"],
            **result, "online_store_dlq": store_dlq, "job_exit_code": rc, "query_failures": len(failures),
            "poisoned_card_online_event_time": held.get("event_time"), "oversized_identifier_put": oversized,
            "offline_rows_flushed_after": flushed, "offline_blocked": health.get("offline_blocked"),
            "reconciled": accounted == len(events), "unaccounted": len(events) - accounted,
            "ok": rc == 0 and not failures and result["lost"] == 0 and result["wrong"] == 0 and store_dlq == 0
            and held.get("event_time") == POISON_TIME and oversized.startswith("refused")
            and not health.get("offline_blocked") and accounted == len(events)}


# --- 7. Kafka retention deletes records the job has not read ------------------------------------

def _metric(textfile: Path, name: str, query: str) -> float:
    wanted = f'{name}{{query="{query}"}} '
    for line in textfile.read_text().splitlines() if textfile.exists() else []:
        if line.startswith(wanted):
            return float(line[len(wanted):])
    return 0.0


def _surviving_ids(bootstrap: str, topic: str) -> set[str]:
    """The transaction ids still in the topic (read from its earliest offsets)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=5000)
    try:
        return {str(json.loads(message.value)["transaction_id"]) for message in consumer}
    finally:
        consumer.close()


def scenario_retention(base: Path, kafka: Kafka) -> dict[str, Any]:
    gen = settings(entities=200, seed=31, rate=10.0)
    events = generate_events(6000, gen)
    records = list(encode(events, gen))
    first = 2000
    with running_emulator(base / "retention") as emu:
        setup = prepare("retention", base, kafka, emu, max_offsets=1000, partitions=2)
        topic = setup.spec.source.topic
        produce_kafka(records[:first], kafka.bootstrap, topic)
        first_rc = setup.job("--available-now").wait(3600)
        read = end_offsets(kafka.bootstrap, topic)
        produce_kafka(records[first:], kafka.bootstrap, topic)
        ends = end_offsets(kafka.bootstrap, topic)
        # As retention would after an outage: the oldest half of what the job has not read is gone.
        cut = {int(p): read[p] + (ends[p] - read[p]) // 2 for p in ends}
        delete_records_before(kafka.bootstrap, topic, cut)
        deleted = sum(cut[int(p)] - read[p] for p in ends)
        log(f"retention: deleted {deleted} unread records (offsets {read} up to {cut})")

        strict_profile = yaml.safe_load(setup.profile_file.read_text())
        strict_profile["kafka"]["fail_on_data_loss"] = True
        strict_profile["checkpoint_root"] = str(setup.work / "checkpoints-strict")
        strict_profile["metrics"]["textfile"] = str(setup.work / "strict.prom")
        shutil.copytree(setup.work / "checkpoints", setup.work / "checkpoints-strict")
        (setup.work / "strict.yaml").write_text(yaml.safe_dump(strict_profile))
        strict = JobProcess(["--feature-group", str(setup.group_file), "--env", str(setup.work / "strict.yaml"),
                             "--available-now"], setup.work / "strict-run", env=setup.env()).start()
        began = time.monotonic()
        strict_rc = strict.wait(1800)
        strict_s = time.monotonic() - began
        lines = [line for line in strict.stderr_path.read_text(errors="replace").splitlines()
                 if line.startswith("featurestream: ")]
        strict_line = lines[-1] if lines else ""
        strict_restarts = sum(1 for e in strict.events() if e.get("event") == "query_failed")

        lenient_rc = setup.job("--available-now").wait(3600)
        query = f"{setup.spec.name}-features"
        counted = _metric(setup.work / "metrics.prom", "featurestream_events_lost_total", query)
        logged = sum(int(e.get("lost", 0)) for e in setup.runs[-1].events()
                     if e.get("event") == "kafka_records_lost" and e.get("query") == query)
        kept = _surviving_ids(kafka.bootstrap, topic)
        read_first = {str(e["transaction_id"]) for e in events[:first]}
        # The oracle gets what the job could read: the first delivery and what survived.
        readable = [e for e in events if str(e["transaction_id"]) in kept | read_first]
        result = online_check(setup, readable)
        totals = setup.engine_totals()
        dlq = len(parquet_rows(setup.dlq / "events"))
    accounted = _engine_in(totals, dlq, int(counted))
    return {"in": len(events), "written": result["entities_written"], "dlq": dlq, "late": totals["late_events"],
            **result, "lost": int(counted), "oracle_lost": result["lost"], "deleted": deleted,
            "lost_logged": logged, "readable_events": len(readable), "first_exit_code": first_rc,
            "strict": {"exit_code": strict_rc, "error_line": strict_line[:400], "seconds": round(strict_s, 1),
                       "restarts": strict_restarts},
            "lenient_exit_code": lenient_rc, "reconciled": accounted == len(events),
            "unaccounted": len(events) - accounted,
            "ok": first_rc == 0 and strict_rc == 1 and len(lines) == 1
            and "kafka.fail_on_data_loss is true" in strict_line
            and strict_line.startswith("featurestream: stream: ") and strict_restarts == 0 and lenient_rc == 0
            and counted == deleted == logged and len(readable) == len(events) - deleted
            and result["lost"] == 0 and result["wrong"] == 0 and accounted == len(events)}


# --- 8. 10 MB messages -------------------------------------------------------------------------

BIG_BYTES = 10 * 1024 * 1024
BIG_COUNT = 5


def scenario_big_messages(base: Path, kafka: Kafka) -> dict[str, Any]:
    from kafka import KafkaProducer

    gen = settings(entities=100, seed=51, rate=10.0)
    events = generate_events(2000, gen)
    records = list(encode(events, gen))
    half = len(records) // 2
    big = [json.dumps({**events[half + i], "transaction_id": f"big-{i}", "merchant_id": "m" * BIG_BYTES}).encode()
           for i in range(BIG_COUNT)]
    # The broker's default message size is 1 MB; a topic may allow more (max.message.bytes).
    limit = str(BIG_BYTES + 1024 * 1024)
    with running_emulator(base / "big_messages") as emu:
        # Feature group names take no underscore.
        setup = prepare("big-messages", base, kafka, emu, max_offsets=500, partitions=2,
                        topic_configs={"max.message.bytes": limit})
        topic = setup.spec.source.topic
        produce_kafka(records[:half], kafka.bootstrap, topic)
        producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all", max_request_size=int(limit))
        try:
            for value in big:
                producer.send(topic, value=value).get(timeout=60)
        finally:
            producer.close()
        produce_kafka(records[half:], kafka.bootstrap, topic)
        began = time.monotonic()
        rc = setup.job("--available-now").wait(3600)
        seconds = time.monotonic() - began
        result = online_check(setup, events)
        dlq = parquet_rows(setup.dlq / "events")
        totals = setup.engine_totals()
    reasons = sorted({str(r["reason"]) for r in dlq})
    big_in_dlq = [r for r in dlq if len(r.get("payload_bytes") or b"") > BIG_BYTES]
    sent = len(events) + BIG_COUNT
    accounted = _engine_in(totals, len(dlq))
    return {"in": sent, "written": result["entities_written"], "dlq": len(dlq), "late": totals["late_events"],
            **result, "exit_code": rc, "message_bytes": len(big[0]), "dlq_reasons": reasons,
            "seconds": round(seconds, 1),
            "reconciled": accounted == sent, "unaccounted": sent - accounted,
            "ok": rc == 0 and len(big_in_dlq) == BIG_COUNT == len(dlq)
            and all(r.startswith("value too large: merchant_id") for r in reasons)
            and sorted(r["payload_bytes"] for r in big_in_dlq) == sorted(big)
            and result["lost"] == 0 and result["wrong"] == 0 and accounted == sent}


# --- main --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"comma-separated subset of {SCENARIOS}")
    parser.add_argument("--events", type=int, default=100_000, help="events of the kill -9 run")
    parser.add_argument("--classes", default=",".join(EXPECTED),
                        help="malformed-input classes to mix in (default: all); for checking one fix at a time")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, checkpoints)")
    parser.add_argument("--ports", default=os.environ.get("FEATURESTREAM_RELIABILITY_PORTS"),
                        help="LOW-HIGH: take the services' ports from this range (default: any free port)")
    args = parser.parse_args(argv)
    if args.ports:
        global _RANGE_GIVEN
        low, _, high = args.ports.partition("-")
        _PORT_RANGE[:] = range(int(low), int(high) + 1)
        _RANGE_GIVEN = True
    chosen = [s for s in args.only.split(",") if s]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}")
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": REGION,
                       "AWS_DEFAULT_REGION": REGION, "SPARK_LOCAL_IP": "127.0.0.1"}.items():
        os.environ.setdefault(key, value)
    base = Path(tempfile.mkdtemp(prefix="featurestream-reliability-"))
    kafka = Kafka(base / "stack")
    log(f"work folder {base}; private Kafka on {kafka.bootstrap}")
    kafka.up()
    results: dict[str, Any] = {}
    pairs: list[Pair] = []
    started = time.monotonic()
    try:
        for name in chosen:
            log(f"scenario {name} ...")
            began = time.monotonic()
            try:
                if name == "kill9":
                    results[name] = scenario_kill9(base, kafka, args.events)
                elif name == "restarts":
                    results[name] = scenario_restarts(base, kafka, 20_000)
                elif name == "faults":
                    results[name], found = scenario_faults(base, kafka, 20_000)
                    pairs += found
                elif name == "malformed":
                    results[name] = scenario_malformed(base, kafka, [c for c in args.classes.split(",") if c])
                elif name == "poison":
                    results[name] = scenario_poison(base, kafka)
                elif name == "retention":
                    results[name] = scenario_retention(base, kafka)
                elif name == "big_messages":
                    results[name] = scenario_big_messages(base, kafka)
                else:
                    results[name] = scenario_compaction(base, kafka)
            except Exception as exc:  # one broken scenario must not hide the others' figures
                where = traceback.extract_tb(exc.__traceback__)[-1]
                results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000],
                                 "at": f"{Path(where.filename).name}:{where.lineno}"}
            results[name]["scenario_s"] = round(time.monotonic() - began, 1)
            log(f"scenario {name}: {'ok' if results[name].get('ok') else 'FAILED'} "
                f"{ {k: results[name].get(k) for k in ('in', 'written', 'dlq', 'late', 'lost', 'wrong')} }")
    finally:
        kafka.down()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    checks: dict[str, Any] = {"all_passed": all(r.get("ok") for r in results.values()),
                              "total_s": round(time.monotonic() - started, 1), **results}
    params = {"scenarios": chosen, "kill9_events": args.events, "kills": 5, "trigger": "1 second",
              "master": "local[2]", "faults": {"throttle_rate": 0.2, "error_rate": 0.01}}
    write_results("reliability", params, pairs, checks)
    return 0 if checks["all_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
