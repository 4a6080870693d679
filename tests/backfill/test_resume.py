"""A backfill resumes after kill -9 without redoing a finished chunk, and a re-run replaces its own
output: in both cases the offline store ends with exactly the rows of one uninterrupted run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from featurestream.backfill.chunks import range_id
from featurestream.backfill.offline import OfflineStoreSink
from tests.backfill.harness import (
    backfill,
    dumps,
    kill_9_after_a_finished_chunk,
    new_setup,
    offline_records,
    offline_root,
    write_events,
)
from tests.engine.harness import event
from tests.ops.job import ROOT, job_env

START_MS = (int(time.time()) // 3600 - 30) * 3_600_000  # on an hour, inside the 7-day TTL
METHOD_LIMIT = "spark.sql.codegen.hugeMethodLimit"
CACHE_COMPRESSED = "spark.sql.inMemoryColumnarStorage.compressed"


def _events() -> list[dict[str, Any]]:
    cards = ("card-a", "card-b", "card-c", "card-d")
    return [event(cards[i % 4], START_MS + i * 97_000, float(i % 5) + 0.5, f"m-{i % 3}") for i in range(60)]


def _rows(setup: Any) -> dict[str, str]:
    return {f"{k[0]}@{k[1]}": dumps({n: v for n, v in row.items() if n not in ("write_time", "api_invocation_time")})
            for k, row in offline_records(setup).items()}


def test_a_rerun_replaces_its_own_output(spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Also: the passes run with HotSpot's method size limit for generated code (a profile found the
    # engine's output conversion interpreted, in a method above 8,000 bytes), and the session gets
    # its own setting back; likewise the chunk's cached engine output is not compressed (building the
    # compressed cache was 15% of a profile).
    limits: list[tuple[str, str]] = []
    write_batch = OfflineStoreSink.write_batch

    def noting_the_limit(self: OfflineStoreSink, records: Any, batch_id: int, rows: int | None = None) -> int:
        conf = records.sparkSession.conf
        limits.append((conf.get(METHOD_LIMIT), conf.get(CACHE_COMPRESSED)))
        return write_batch(self, records, batch_id, rows)

    monkeypatch.setattr(OfflineStoreSink, "write_batch", noting_the_limit)
    limit_before, compressed_before = spark.conf.get(METHOD_LIMIT), spark.conf.get(CACHE_COMPRESSED)
    setup = new_setup(tmp_path, "127.0.0.1:1")  # no Kafka: the backfill reads files only
    events = _events()
    first = backfill(spark, setup, events, timedelta(hours=1))
    assert len(first.chunks) == 2 and not any(c.skipped for c in first.chunks)
    assert limits == [("8000", "false")] * 2
    assert (spark.conf.get(METHOD_LIMIT), spark.conf.get(CACHE_COMPRESSED)) == (limit_before, compressed_before)
    rows, files = _rows(setup), sorted(offline_root(setup).rglob("*.parquet"))
    assert len(rows) >= len(events)

    again = backfill(spark, setup, events, timedelta(hours=1))  # same range: nothing to redo
    assert all(c.skipped for c in again.chunks)
    assert sorted(offline_root(setup).rglob("*.parquet")) == files

    # Recomputed, replacing its files; with the classes Spark generated for the first run: the new
    # write time is no literal in them (a new class per chunk costs its compile and JIT-compile).
    compiled = spark.sparkContext._jvm.org.apache.spark.metrics.source.CodegenMetrics.METRIC_COMPILATION_TIME()
    classes_before = compiled.getCount()
    backfill(spark, setup, events, timedelta(hours=1), restart=True)
    assert compiled.getCount() == classes_before
    assert _rows(setup) == rows
    assert sorted(offline_root(setup).rglob("*.parquet")) == files


def test_kill_9_resumes_without_redoing_a_finished_chunk(spark: Any, tmp_path: Path) -> None:
    events = _events()
    reference = new_setup(tmp_path / "reference", "127.0.0.1:1")
    backfill(spark, reference, events, timedelta(hours=1))

    setup = new_setup(tmp_path / "killed", "127.0.0.1:1")
    source = tmp_path / "killed" / "events.jsonl"
    write_events(source, events)
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"kafka": {"bootstrap_servers": "127.0.0.1:1"}, "spark": {"master": "local[2]",
                                   "shuffle_partitions": 2}, "checkpoint_root": str(setup.profile.checkpoint_root),
                                   "dlq_path": str(setup.profile.dlq_path), "metrics": {"enabled": False},
                                   "lineage": {"transport": "none"}}))
    start = datetime.fromtimestamp(min(e["ts_ms"] for e in events) / 1000, tz=UTC)
    end = datetime.fromtimestamp((max(e["ts_ms"] for e in events) + 1) / 1000, tz=UTC)
    args = [sys.executable, "-m", "featurestream.cli", "backfill", "--feature-group", str(setup.spec_file),
            "--env", str(profile), "--from-files", str(source), "--format", "json", "--start", start.isoformat(),
            "--end", end.isoformat(), "--chunk", "1h", "--output", str(offline_root(setup))]
    rid = range_id(setup.spec.online_store.feature_group_name, start, end)
    progress = Path(setup.profile.checkpoint_root) / setup.spec.name / "backfill" / rid / "progress.json"

    finished = kill_9_after_a_finished_chunk(args, job_env(), progress, tmp_path / "first.log")
    assert finished

    second = subprocess.run(args, cwd=ROOT, env=job_env(), capture_output=True, timeout=600, check=False)
    assert second.returncode == 0, second.stderr.decode()[-2000:]
    chunk_lines = [json.loads(x) for x in second.stderr.decode().splitlines()
                   if x.startswith("{") and '"backfill_chunk"' in x]
    skipped = {str(c["chunk"]) for c in chunk_lines if c["skipped"]}
    assert finished <= skipped, (finished, skipped)
    assert _rows(setup) == _rows(reference)
