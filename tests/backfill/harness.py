"""One random event stream through the streaming job (Kafka → Spark, records captured) and through
`featurestream backfill` (the same events as JSON lines → the offline store), side by side."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from featurestream.backfill.job import BackfillRequest, BackfillResult, run_backfill
from featurestream.backfill.sources import FileSource
from featurestream.config import load_feature_group, load_profile
from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.config.profile import EnvironmentProfile
from featurestream.dev.generator import produce_kafka
from featurestream.engine.pipeline import start_stream
from tests.engine.harness import DEDUPE_LINE, GROUP_YAML, encode

META = ("card_id", "event_time")


@dataclass
class CapturedSink:
    """Every record the stream's features query hands its sink, as plain values."""

    records: list[dict[str, Any]] = field(default_factory=list)

    def write_batch(self, records: Any, batch_id: int, rows: int | None = None) -> None:
        for row in records.collect():
            values = row.asDict()
            values["event_time"] = ms_of(values["event_time"])
            self.records.append(values)


def ms_of(value: Any) -> int:
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    # PySpark hands timestamps over as naive local times: .timestamp() reads them back as local too.
    return round(value.timestamp() * 1000)


@dataclass
class Setup:
    spec: FeatureGroupSpec
    spec_file: Path
    profile: EnvironmentProfile
    root: Path


def new_setup(tmp_path: Path, bootstrap: str, *, dedupe: bool = True) -> Setup:
    suffix = uuid.uuid4().hex[:8]
    text = GROUP_YAML.replace("TOPIC", f"backfill-{suffix}").replace("FGNAME", f"backfill-{suffix}")
    if not dedupe:
        text = text.replace(DEDUPE_LINE, "")
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "backfill_cards.yaml"
    path.write_text(text)
    profile = load_profile("local")
    profile = profile.model_copy(update={
        "checkpoint_root": str(tmp_path / "checkpoints"), "dlq_path": str(tmp_path / "dlq"),
        "kafka": profile.kafka.model_copy(update={"bootstrap_servers": bootstrap}),
    })
    return Setup(load_feature_group(path), path, profile, tmp_path)


def stream_records(spark: Any, setup: Setup, batches: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each batch one micro-batch of the real streaming job; the records it wrote."""
    sink = CapturedSink()
    for batch in batches:
        produce_kafka([encode(e) for e in batch], setup.profile.kafka.bootstrap_servers, setup.spec.source.topic)
        queries = start_stream(spark, setup.spec, setup.profile, available_now=True, sink=sink)
        for query in queries.all():
            query.awaitTermination()
            assert query.exception() is None, query.exception()
    return sink.records


def write_events(path: Path, events: list[dict[str, Any]]) -> None:
    path.write_text("".join(encode(e)[1].decode() + "\n" for e in events))


def backfill(spark: Any, setup: Setup, events: list[dict[str, Any]], chunk: timedelta, *,
             restart: bool = False, start_ms: int | None = None, end_ms: int | None = None) -> BackfillResult:
    source = setup.root / "events.jsonl"
    write_events(source, events)
    lo = min(e["ts_ms"] for e in events) if start_ms is None else start_ms
    hi = max(e["ts_ms"] for e in events) + 1 if end_ms is None else end_ms
    start = datetime.fromtimestamp(lo / 1000, tz=UTC)
    end = datetime.fromtimestamp(hi / 1000, tz=UTC)
    request = BackfillRequest(setup.spec, str(setup.spec_file), setup.profile, FileSource(str(source), "json"),
                              start, end, int(chunk.total_seconds() * 1000), str(offline_root(setup)),
                              restart=restart)
    return run_backfill(spark, request)


def offline_root(setup: Setup) -> Path:
    return setup.root / "offline" / "data"


def offline_records(setup: Setup) -> dict[tuple[str, int], dict[str, Any]]:
    """The backfill's offline rows by (entity, EventTime), read with pyarrow (not Spark)."""
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for path in sorted(offline_root(setup).rglob("*.parquet")):
        for row in pq.read_table(path).to_pylist():
            key = (row["card_id"], ms_of(row["event_time"]))
            assert key not in found, f"two offline rows for {key}"
            found[key] = row
    return found


def by_entity(records: dict[tuple[str, int], dict[str, Any]]) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    out: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for (entity, t), row in sorted(records.items()):
        out[entity].append((t, row))
    return out


def dumps(row: dict[str, Any]) -> str:
    return json.dumps(row, default=str, sort_keys=True)


def kill_9_after_a_finished_chunk(args: list[str], env: dict[str, str], progress: Path, log: Path) -> set[str]:
    """Starts `featurestream backfill` (`args`), kills it with -9 as soon as its `progress` file marks
    a chunk done, and returns the chunks done by then."""
    from tests.ops.job import ROOT

    with log.open("wb") as out:
        job = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=out)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and job.poll() is None:
            chunks = json.loads(progress.read_text())["chunks"] if progress.exists() else {}
            if any(c["state"] == "done" for c in chunks.values()):
                break
            time.sleep(0.1)
        assert job.poll() is None, f"the backfill ended before it could be killed: {log.read_text()[-2000:]}"
        os.kill(job.pid, signal.SIGKILL)
        job.wait(60)
    return {k for k, c in json.loads(progress.read_text())["chunks"].items() if c["state"] == "done"}
