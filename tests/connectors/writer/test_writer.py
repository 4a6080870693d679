"""The online-store writer against the Feature Store emulator over real HTTP, through Spark.

Every check compares with an independent computation (`helpers.expected_state`: newest row per
id in plain Python) or with what the emulator itself recorded (online reads, offline rows).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from featurestream.connectors.online_store import OnlineStoreSink
from featurestream.connectors.writer.settings import WriterSettings
from featurestream.errors import SinkError
from tests.connectors.writer.helpers import (
    create_group,
    events,
    expected_state,
    normalise,
    offline_rows,
    online_state,
    target,
    writer_settings,
)

pytestmark = pytest.mark.integration
SCHEMA = "id string, ts timestamp, n long, x double, s string"
STRING_N = "id string, ts timestamp, n string, x double, s string"


def _frame(spark: Any, rows: list[dict[str, Any]], partitions: int = 2) -> Any:
    return spark.createDataFrame([tuple(r[c] for c in ("id", "ts", "n", "x", "s")) for r in rows], SCHEMA) \
        .repartition(partitions)


def _settings(url: str, tmp_path: Path, **overrides: Any) -> WriterSettings:
    values: dict[str, Any] = {"runtime_endpoint_url": url, "threads_per_partition": 4,
                              "backoff_base_ms": 5, "backoff_cap_ms": 200, "batch_timeout_s": 120}
    values.update(overrides)
    return writer_settings(tmp_path / "dlq", **values)


@pytest.mark.parametrize(("mode", "where"), [("batch", "executors"), ("put", "executors"), ("batch", "driver")])
def test_latest_per_entity_lands_under_throttling_and_5xx(spark, emulator_factory, tmp_path: Path, mode: str,
                                                          where: str) -> None:
    emu = emulator_factory(throttle_rate=0.2, error_rate=0.01, unprocessed_rate=0.05, seed=11)
    described = create_group(emu.url, offline=True)
    name = described["FeatureGroupName"]
    rows = events(300, per_entity=3, seed=3)

    # A caller that says how many rows a small batch holds gets it written from the driver.
    metrics = OnlineStoreSink(target(name), _settings(emu.url, tmp_path, write_mode=mode)).write_batch(
        _frame(spark, rows), batch_id=7, rows=len(rows) if where == "driver" else None)

    expected = expected_state(rows)
    assert normalise(online_state(emu.url, name, sorted(expected))) == normalise(expected)
    # Offline rows are one per accepted write: exactly one per entity means nothing was written twice.
    emu.flush()
    offline = Counter(r["id"] for r in offline_rows(Path(emu.options["offline_local_dir"]), described))
    assert offline == Counter(expected.keys())
    assert (metrics.records_in, metrics.entities, metrics.records_written, metrics.dlq) == (900, 300, 300, 0)
    assert metrics.throttles and metrics.throttles > 0 and metrics.retries and metrics.retries >= metrics.throttles
    assert metrics.latency_ms_p50 is not None and metrics.latency_ms_p99 is not None
    assert metrics.latency_ms_p50 <= metrics.latency_ms_p99
    assert metrics.where == where
    assert not (tmp_path / "dlq").exists()


@pytest.mark.parametrize(("mode", "where"), [("batch", "executors"), ("put", "executors"), ("batch", "driver")])
def test_rejected_record_goes_to_dlq_and_the_rest_lands(spark, emulator, tmp_path: Path, mode: str,
                                                        where: str) -> None:
    # `n` is a String column here but Integral in the group: "oops" cannot be an integer.
    described = create_group(emulator.url)
    name = described["FeatureGroupName"]
    rows = events(60, seed=5)
    bad_id = rows[17]["id"]
    frame_rows = [(r["id"], r["ts"], "oops" if r["id"] == bad_id else str(r["n"]), r["x"], r["s"]) for r in rows]
    frame = spark.createDataFrame(frame_rows, STRING_N)

    metrics = OnlineStoreSink(target(name), _settings(emulator.url, tmp_path, write_mode=mode)).write_batch(
        frame, batch_id=3, rows=len(rows) if where == "driver" else None)

    expected = expected_state([r for r in rows if r["id"] != bad_id])
    state = online_state(emulator.url, name, sorted([*expected, bad_id]))
    assert normalise(state) == normalise(expected)
    dlq = pq.read_table(tmp_path / "dlq").to_pylist()
    assert len(dlq) == 1
    entry = dlq[0]
    assert (entry["feature_group"], entry["record_identifier"], entry["error_code"], int(entry["batch_id"])) == (
        name, bad_id, "ValidationError", 3)
    assert "Integral" in entry["error_message"] and '"n": "oops"' in entry["record"]
    assert entry["sink"] == "featurestream" and entry["failed_at"] is not None
    assert (metrics.entities, metrics.records_written, metrics.dlq, metrics.where) == (60, 59, 1, where)


def test_replayed_batch_rewrites_its_dlq_partition_without_duplicates(spark, emulator, tmp_path: Path) -> None:
    described = create_group(emulator.url)
    rows = events(10, seed=9)
    frame = spark.createDataFrame([(r["id"], r["ts"], "bad" if i < 2 else str(r["n"]), r["x"], r["s"])
                                   for i, r in enumerate(rows)], STRING_N)
    sink = OnlineStoreSink(target(described["FeatureGroupName"]), _settings(emulator.url, tmp_path))
    sink.write_batch(frame, batch_id=1)
    sink.write_batch(frame, batch_id=1)  # Spark replaying batch 1
    sink.write_batch(frame, batch_id=2)
    dlq = pq.read_table(tmp_path / "dlq").to_pylist()
    assert Counter(int(e["batch_id"]) for e in dlq) == {1: 2, 2: 2}


def test_exhausted_retries_fail_the_batch_within_its_time_budget(spark, emulator_factory, tmp_path: Path) -> None:
    emu = emulator_factory(throttle_rate=1.0)
    name = create_group(emu.url)["FeatureGroupName"]
    settings = _settings(emu.url, tmp_path, max_attempts=50, backoff_base_ms=50, backoff_cap_ms=400,
                         batch_timeout_s=3)
    with pytest.raises(SinkError, match="time budget exhausted"):
        OnlineStoreSink(target(name), settings).write_batch(_frame(spark, events(20)), batch_id=0)


def test_missing_feature_group_fails_the_batch(spark, emulator, tmp_path: Path) -> None:
    with pytest.raises(SinkError, match="ResourceNotFound"):
        OnlineStoreSink(target("no-such-group"), _settings(emulator.url, tmp_path)).write_batch(
            _frame(spark, events(5)), batch_id=0)


def test_already_unique_skips_the_dedup_and_the_default_keeps_it(spark, emulator, tmp_path: Path) -> None:
    """`already_unique` (the engine's promise of one row per entity) writes every row as given; the
    default still keeps the latest per entity. Two rows per entity tell them apart by the writes."""
    from dataclasses import replace

    described = create_group(emulator.url)
    name = described["FeatureGroupName"]
    rows = events(50, per_entity=2, seed=5)
    settings = _settings(emulator.url, tmp_path)

    default = OnlineStoreSink(target(name), settings).write_batch(_frame(spark, rows), batch_id=1)
    assert (default.records_in, default.entities, default.records_written) == (100, 50, 50)
    assert normalise(online_state(emulator.url, name, sorted({r["id"] for r in rows}))) == \
        normalise(expected_state(rows))

    unique = replace(target(name), already_unique=True)
    trusted = OnlineStoreSink(unique, settings).write_batch(_frame(spark, rows), batch_id=2)
    # Nothing was aggregated away: both rows of every entity went to the store.
    assert (trusted.records_in, trusted.entities, trusted.records_written) == (100, 100, 100)

    # With really unique rows (the latest of each entity) the result is the same as the default's.
    latest = list({r["id"]: r for r in sorted(rows, key=lambda r: r["ts"])}.values())
    again = OnlineStoreSink(unique, settings).write_batch(_frame(spark, latest), batch_id=3)
    assert (again.records_in, again.entities, again.records_written) == (50, 50, 50)
    assert normalise(online_state(emulator.url, name, sorted({r["id"] for r in rows}))) == \
        normalise(expected_state(rows))
