"""The streaming job as users run it, for the benchmarks: `featurestream stream` in this process.

`run_job` calls the command's own `run` (the code `featurestream stream` and
`jobs/stream_features.py` run: one query per source with its DLQ, the profile's settings) with
`--available-now` on a private profile file, in the benchmark's Spark session (kept warm between
runs, as a long-running job is), and returns the progress of its micro-batches as Spark reported
them. Also: the sparse event set (Zipf entities, event-time order) and the bare BatchWriteRecord
loop it is compared with.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class JobRun:
    """The micro-batches of one run of the job (its query's progress), and the writer's totals so far
    by online feature group (records_written, ...)."""

    progress: list[dict[str, Any]]
    written: dict[str, dict[str, Any]]

    @property
    def events(self) -> int:
        # Spark counts a source's rows per scan of it; the job scans each batch once, whatever its groups.
        return sum(int(p["numInputRows"]) for p in self.progress)

    def seconds(self, skip_first: int = 0) -> float:
        data = [p for p in self.progress if int(p["numInputRows"]) > 0]
        timers = [p for p in self.progress if int(p["numInputRows"]) == 0]
        kept = data[skip_first:] + timers
        return sum(p["durationMs"].get("triggerExecution", 0) for p in kept) / 1000.0

    def events_per_s(self, skip_first: int = 0) -> float:
        data = [p for p in self.progress if int(p["numInputRows"]) > 0]
        rows = sum(int(p["numInputRows"]) for p in data[skip_first:])
        return rows / max(1e-9, self.seconds(skip_first))


class _Progress:
    """Every progress event of the session's queries (a StreamingQueryListener)."""

    def __init__(self) -> None:
        from pyspark.sql.streaming.listener import StreamingQueryListener

        events: list[dict[str, Any]] = []
        lock = threading.Lock()

        class Listener(StreamingQueryListener):
            def onQueryStarted(self, event: Any) -> None:
                pass

            def onQueryProgress(self, event: Any) -> None:
                with lock:
                    events.append(json.loads(event.progress.json))

            def onQueryIdle(self, event: Any) -> None:
                pass

            def onQueryTerminated(self, event: Any) -> None:
                pass

        self.events = events
        self.listener = Listener()


def online_only() -> Any:
    """The local profile without an offline store (the benchmarks' private emulator has no S3)."""
    from featurestream.config import load_profile

    profile = load_profile("local")
    return profile.model_copy(update={"feature_store": profile.feature_store.model_copy(
        update={"offline_store_s3_uri": None})})


def write_profile(path: Path, work: Path, bootstrap: str, per_batch: int, trigger: str = "1 seconds",
                  metrics_port: int | None = None) -> Path:
    """A local profile for the job: the stack's Kafka, `per_batch` records per micro-batch at most."""
    path.write_text(yaml.safe_dump({
        "kind": "local",
        "kafka": {"bootstrap_servers": bootstrap, "max_offsets_per_trigger": per_batch},
        "feature_store": {"region": "us-east-1", "offline_store_s3_uri": None,
                          "role_arn": "arn:aws:iam::123456789012:role/featurestream-local"},
        "spark": {"master": "local[2]", "shuffle_partitions": 2, "trigger_interval": trigger},
        "checkpoint_root": str(work / "checkpoints"),
        "dlq_path": str(work / "dlq"),
        "metrics": {"enabled": metrics_port is not None, "port": metrics_port or 0},
    }))
    return path


def run_job(spark: Any, group_files: list[Path], profile_file: Path) -> JobRun:
    """`featurestream stream --feature-group F... --env PROFILE --available-now`, in this process."""
    from featurestream.cli.commands import stream
    from featurestream.ops.listener import drain

    parser = argparse.ArgumentParser()
    stream.add_arguments(parser)
    argv = [arg for f in group_files for arg in ("--feature-group", str(f))]
    args = parser.parse_args([*argv, "--env", str(profile_file), "--available-now"])
    collected = _Progress()
    spark.streams.addListener(collected.listener)
    try:
        code = stream.run(args)
        drain(spark, 60.0)
    finally:
        spark.streams.removeListener(collected.listener)
    if code != 0:
        raise RuntimeError(f"the stream job exited {code}")
    from featurestream.connectors.writer.metrics import history

    written = {group: dict(data["totals"]) for group, data in history.snapshot().items()}
    return JobRun([p for p in collected.events if str(p.get("name", "")).endswith("-features")], written)


def zipf_entities(events: int, entities: int, seed: int = 7, exponent: float = 0.8) -> Any:
    """`events` entity ids out of `entities`, P(i) ∝ 1/(i + 10)^exponent: a head of busy entities and a
    long tail with one to three events each."""
    import numpy as np

    rng = np.random.default_rng(seed)
    weights = 1.0 / np.power(np.arange(entities, dtype=np.float64) + 10.0, exponent)
    return rng.choice(entities, size=events, p=weights / weights.sum())


def records_per_batch(entity_ids: Any, per_batch: int) -> int:
    """Records the job writes: one per entity per micro-batch of `per_batch` events."""
    import numpy as np

    return int(sum(len(np.unique(entity_ids[i:i + per_batch])) for i in range(0, len(entity_ids), per_batch)))


def bare_batch_write_loop(feature_group: str, records: int, features: list[str], threads: int = 8) -> float:
    """Seconds a bare boto3 thread pool takes to write `records` records (BatchWriteRecord of 25), each
    with the group's identifier, event time and every feature: the floor of the sparse shape."""
    import boto3

    client = boto3.client("sagemaker-featurestore-runtime")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    values = [{"FeatureName": name, "ValueAsString": "1"} for name in features]  # valid for any type

    def chunk(start: int) -> None:
        entries = [{"FeatureGroupName": feature_group, "Record": [
            {"FeatureName": "card_id", "ValueAsString": f"bare-{i}"},
            {"FeatureName": "event_time", "ValueAsString": stamp}, *values]}
            for i in range(start, min(start + 25, records))]
        response = client.batch_write_record(Entries=entries)
        if response.get("Errors") or response.get("UnprocessedEntries"):
            raise RuntimeError(f"bare loop: {response.get('Errors') or response.get('UnprocessedEntries')}")

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(chunk, range(0, records, 25)))
    return time.monotonic() - started
