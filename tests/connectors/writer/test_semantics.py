"""Replays, the rate limit and the PutRecord fallback, end to end over real HTTP.

- A micro-batch killed half-written (the emulator dies mid-batch) and replayed from the
  checkpoint leaves the online store exactly as a clean run does (exactly-once effect).
- The token bucket keeps the observed call rate, measured from the emulator's own
  api_invocation_time stamps, within 10% of the configured budget.
- Without BatchWriteRecord at the endpoint, write_mode auto falls back to PutRecord; batch fails.
"""

from __future__ import annotations

import random
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestream.connectors.online_store import OnlineStoreSink
from featurestream.errors import SinkError
from tests.connectors.writer.helpers import (
    T0,
    create_group,
    events,
    expected_state,
    list_ids,
    normalise,
    offline_rows,
    online_state,
    target,
    writer_settings,
)
from tests.connectors.writer.proxy import NoBatchWriteProxy

pytestmark = pytest.mark.integration
SCHEMA = "id string, ts timestamp, n long, x double, s string"


def _rows(ids: range, per_entity: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [{"id": f"card-{i:05d}", "ts": T0 + timedelta(seconds=rng.randrange(7200), milliseconds=rng.randrange(1000)),
             "n": rng.randrange(10**6), "x": round(rng.uniform(-100, 100), 3), "s": f"b{seed}"}
            for i in ids for _ in range(per_entity)]


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    table = pa.table({
        "id": [r["id"] for r in rows], "ts": pa.array([r["ts"] for r in rows], pa.timestamp("us", tz="UTC")),
        "n": [r["n"] for r in rows], "x": [r["x"] for r in rows], "s": [r["s"] for r in rows],
    })
    pq.write_table(table, path)


def _run(spark: Any, source: Path, checkpoint: Path, sink: OnlineStoreSink) -> Any:
    stream = spark.readStream.schema(SCHEMA).option("maxFilesPerTrigger", 1).parquet(str(source))
    query = (stream.writeStream.foreachBatch(lambda df, batch_id: sink.write_batch(df, batch_id))
             .option("checkpointLocation", str(checkpoint)).trigger(availableNow=True).start())
    try:
        query.awaitTermination()
    except Exception:  # the failure is returned through query.exception()
        pass
    return query


def test_batch_killed_half_written_and_replayed_matches_a_clean_run(spark, emulator_factory, tmp_path: Path) -> None:
    emu = emulator_factory(latency_ms=5)
    batch0 = _rows(range(0, 120), 1, seed=1)
    batch1 = _rows(range(60, 300), 2, seed=2)  # overlaps batch 0, with older and newer times
    source = tmp_path / "in"
    source.mkdir()
    _write_parquet(source / "part-0.parquet", batch0)
    _write_parquet(source / "part-1.parquet", batch1)
    expected = expected_state(batch0 + batch1)
    # 80 calls/s paces batch 1 (240 PutRecords) over ~3 s on any machine: the kill lands inside it.
    settings = writer_settings(tmp_path / "dlq", runtime_endpoint_url=emu.url, write_mode="put",
                               threads_per_partition=2, max_attempts=4, backoff_base_ms=20, backoff_cap_ms=100,
                               batch_timeout_s=30, account_tps=80)

    clean = create_group(emu.url)["FeatureGroupName"]
    assert _run(spark, source, tmp_path / "cp-clean", OnlineStoreSink(target(clean), settings)).exception() is None

    killed = create_group(emu.url)["FeatureGroupName"]
    seen: list[int] = []

    def kill_mid_batch() -> None:
        # Batch 0 writes 120 ids; once batch 1 has written some more, the service dies.
        while True:
            count = len(list_ids(emu.url, killed))
            if count >= 150:
                seen.append(count)
                emu.kill()
                return

    watcher = threading.Thread(target=kill_mid_batch, daemon=True)
    watcher.start()
    failed = _run(spark, source, tmp_path / "cp-killed", OnlineStoreSink(target(killed), settings))
    watcher.join(timeout=60)
    error = str(failed.exception())
    assert "RetriesExhausted" in error or "time budget exhausted" in error, error[:2000]

    emu.start()  # same port, same SQLite state: acknowledged writes survived the kill
    half = set(list_ids(emu.url, killed))
    assert seen and 150 <= len(half) < len(expected), "the kill must land inside batch 1"

    replay = _run(spark, source, tmp_path / "cp-killed", OnlineStoreSink(target(killed), settings))
    assert replay.exception() is None
    ids = sorted(expected)
    killed_state = online_state(emu.url, killed, ids)
    assert killed_state == online_state(emu.url, clean, ids)
    assert normalise(killed_state) == normalise(expected)


def test_rate_limit_holds_observed_tps_within_ten_percent(spark, emulator_factory, tmp_path: Path) -> None:
    emu = emulator_factory()
    described = create_group(emu.url, offline=True)
    budget = 80.0
    settings = writer_settings(tmp_path / "dlq", runtime_endpoint_url=emu.url, write_mode="put",
                               threads_per_partition=8, account_tps=budget)
    rows = events(240, seed=4)
    frame = spark.createDataFrame([tuple(r[c] for c in ("id", "ts", "n", "x", "s")) for r in rows], SCHEMA)

    metrics = OnlineStoreSink(target(described["FeatureGroupName"]), settings).write_batch(frame, batch_id=0)

    emu.flush()
    stamps = sorted(r["api_invocation_time"] for r in offline_rows(Path(emu.options["offline_local_dir"]), described))
    assert len(stamps) == 240 == metrics.calls
    observed = (len(stamps) - 1) / (stamps[-1] - stamps[0]).total_seconds()
    # Never above the budget by more than 10%; below it only by what a loaded 2-core machine costs
    # (70.9 calls/s for 80 was seen at load average 20), never by a limiter that holds back too much.
    assert 0.75 * budget <= observed <= 1.1 * budget, f"observed {observed:.1f} calls/s for a budget of {budget}"
    assert metrics.worker_tps_budget == budget / metrics.partitions and metrics.rate_wait_s


def test_without_batch_write_record_auto_falls_back_to_put_record(spark, emulator, tmp_path: Path) -> None:
    name = create_group(emulator.url)["FeatureGroupName"]
    rows = events(80, seed=6)
    frame = spark.createDataFrame([tuple(r[c] for c in ("id", "ts", "n", "x", "s")) for r in rows], SCHEMA)
    with NoBatchWriteProxy(emulator.url) as proxy:
        metrics = OnlineStoreSink(target(name), writer_settings(tmp_path, runtime_endpoint_url=proxy.url))\
            .write_batch(frame, batch_id=0)
        assert proxy.refused >= 1 and metrics.fallbacks >= 1
        with pytest.raises(SinkError, match="BatchWriteRecord"):
            OnlineStoreSink(target(name), writer_settings(runtime_endpoint_url=proxy.url, write_mode="batch"))\
                .write_batch(frame, batch_id=1)
    assert metrics.records_written == 80 and metrics.calls is not None and metrics.calls >= 80
    assert normalise(online_state(emulator.url, name, sorted(expected_state(rows)))) == normalise(expected_state(rows))
