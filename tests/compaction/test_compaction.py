"""Compaction of offline stores written by the Feature Store emulator into Iceberg tables, read
back with pyiceberg and checked against DuckDB."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from featurestream.compaction import compact_feature_group, load_compacted
from featurestream.dev.feature_store import EmulatorProcess
from tests.compaction import oracle
from tests.compaction.conftest import iceberg, settings, source_of, target_for
from tests.compaction.data import START, Group, batch, duplicate_a_file, iso, local_files

pytestmark = pytest.mark.integration


def _instant(value: Any) -> float:
    if isinstance(value, float | int):
        return float(value)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


def local_path(uri: str) -> Path:
    return Path(uri.removeprefix("file:"))


def files_by_partition(table: Any) -> dict[str, list[str]]:
    """The current snapshot's data files per partition key, from pyiceberg's scan plan."""
    out: dict[str, list[str]] = {}
    for task in table.scan().plan_files():
        record = task.file.partition
        key = "/".join(f"{field.name}={_partition_text(record[i])}"
                       for i, field in enumerate(table.spec().fields))
        out.setdefault(key, []).append(task.file.file_path)
    return {k: sorted(v) for k, v in out.items()}


def _partition_text(value: Any) -> str:
    # Iceberg keeps a date partition as days since 1970-01-01.
    return (datetime(1970, 1, 1) + timedelta(days=value)).strftime("%Y-%m-%d") if value > 10_000 else str(value)


def assert_files_sorted_and_compressed(table: Any, compression: str = "ZSTD") -> None:
    for files in files_by_partition(table).values():
        for file in files:
            parquet = pq.ParquetFile(local_path(file))
            assert parquet.metadata.row_group(0).column(0).compression == compression
            data = parquet.read(columns=["id", "ts"]).to_pydict()
            keys = [(i, _instant(t)) for i, t in zip(data["id"], data["ts"], strict=True)]
            assert keys == sorted(keys), f"{file} is not sorted by record identifier and event time"


def assert_no_garbage(table: Any, output: Path) -> None:
    """With gc_grace 0, the data folder holds exactly the current snapshot's files."""
    committed = {str(local_path(f)) for files in files_by_partition(table).values() for f in files}
    visible = {str(p) for p in local_files(output / "data")}
    assert visible == committed


def files_state(output: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(output)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in output.rglob("*") if p.is_file() and p.name != "lock.json"}


def test_compacted_rows_equal_independent_computation_and_rerun_is_a_noop(
    spark: Any, catalog: Any, emulator: EmulatorProcess, offline_root: Path, tmp_path: Path
) -> None:
    group = Group.create(emulator, "s3://offline-bucket/cmp")
    group.put(batch(range(120), hours=30, seed=1))
    group.flush()
    # Later writes of the same (id, EventTime) with new values, and soft deletes.
    group.put(batch(range(0, 120, 4), hours=30, seed=1, version=1))
    for i in range(0, 120, 10):
        group.delete(f"r{i:04d}", iso(START + timedelta(hours=40)))
    group.flush()
    source = source_of(group, offline_root)
    duplicate_a_file(source.path)  # an at-least-once re-delivery
    output = tmp_path / "out" / group.name

    target = target_for(group, source, output)
    summary = compact_feature_group(spark, target, settings(snapshot=True))

    raw = local_files(source.path)
    columns, expected = oracle.expected(raw)
    table = iceberg(catalog, target.table_ref)
    assert oracle.compacted(table, columns) == expected
    assert summary.snapshot_id == table.current_snapshot().snapshot_id
    assert summary.status == "compacted" and summary.version == 1
    assert summary.files_in == len(raw)
    assert summary.rows_out == len(expected)
    assert summary.duplicates_removed == pq.read_metadata(raw[0]).num_rows
    assert summary.superseded_removed == 30
    assert summary.tombstones_kept == 12
    assert summary.rows_in == summary.rows_out + summary.duplicates_removed + summary.superseded_removed
    assert summary.partitions_rewritten == len({row[-1] for row in expected})
    assert_files_sorted_and_compressed(table)
    assert_no_garbage(table, output)

    _, expected_latest = oracle.expected_snapshot(raw)
    assert oracle.snapshot(table, output, columns) == expected_latest
    assert summary.snapshot_rows == 120

    # The reader API (Spark's Iceberg source) gives the same rows.
    assert load_compacted(spark, target.table_ref).count() == len(expected)

    before = files_state(output)
    again = compact_feature_group(spark, target, settings(snapshot=True))
    assert again.status == "noop" and again.files_out == 0 and again.version == 1
    assert again.snapshot_id == summary.snapshot_id
    assert files_state(output) == before


def test_incremental_runs_rewrite_only_touched_partitions_and_equal_one_run(
    spark: Any, catalog: Any, emulator: EmulatorProcess, offline_root: Path, tmp_path: Path
) -> None:
    group = Group.create(emulator, "s3://offline-bucket/cmp")
    group.put(batch(range(80), hours=48, seed=2))
    group.flush()
    source = source_of(group, offline_root)
    incremental = tmp_path / "incremental" / group.name
    target = target_for(group, source, incremental)
    first = compact_feature_group(spark, target, settings(target_file_bytes=4096))
    assert first.partitions_rewritten == 3
    v1 = files_by_partition(iceberg(catalog, target.table_ref))

    # New rows for the last day only, including superseding versions of rows compacted in run 1.
    last_day = START + timedelta(hours=27)
    group.put(batch(range(80, 100), hours=20, seed=3, start=last_day))
    group.put([r for r in batch(range(80), hours=48, seed=2, version=7)
               if datetime.fromisoformat(r["ts"].replace("Z", "+00:00")) >= START + timedelta(hours=20)])
    group.flush()
    second = compact_feature_group(spark, target, settings(target_file_bytes=4096))
    table = iceberg(catalog, target.table_ref)
    v2 = files_by_partition(table)
    assert second.version == 2
    assert second.partitions == ["event_date=2026-11-21", "event_date=2026-11-22"]
    assert second.existing_files_read == len(v1["event_date=2026-11-21"]) + len(v1["event_date=2026-11-22"])
    untouched = "event_date=2026-11-20"
    assert v2[untouched] == v1[untouched]  # same files: not rewritten
    assert second.files_in == len(local_files(source.path)) - first.files_in

    one_shot = tmp_path / "one-shot" / group.name
    one_shot_target = target_for(group, source, one_shot)
    compact_feature_group(spark, one_shot_target, settings(target_file_bytes=4096))
    columns, expected = oracle.expected(local_files(source.path))
    assert oracle.compacted(table, columns) == expected
    assert oracle.compacted(iceberg(catalog, one_shot_target.table_ref), columns) == expected
    assert_no_garbage(table, incremental)


def test_applied_deletes_reach_partitions_compacted_earlier(
    spark: Any, catalog: Any, emulator: EmulatorProcess, offline_root: Path, tmp_path: Path
) -> None:
    group = Group.create(emulator, "s3://offline-bucket/cmp")
    group.put(batch(range(60), hours=40, seed=4))
    group.flush()
    source = source_of(group, offline_root)
    output = tmp_path / "out" / group.name
    options = settings(deletes="apply", snapshot=True)
    target = target_for(group, source, output)
    compact_feature_group(spark, target, options)

    # Deletes dated on the last day remove the records' earlier rows in every older partition;
    # r0003 is written again after its delete and must survive with the newer row only.
    delete_time = START + timedelta(hours=50)
    for i in (1, 2, 3, 25, 40):
        group.delete(f"r{i:04d}", iso(delete_time))
    group.put([{"id": "r0003", "ts": iso(delete_time + timedelta(minutes=5)), "n": 3, "x": 0.5, "s": "back"}])
    group.flush()
    summary = compact_feature_group(spark, target, options)

    raw = local_files(source.path)
    columns, expected = oracle.expected(raw, deletes="apply")
    table = iceberg(catalog, target.table_ref)
    assert oracle.compacted(table, columns) == expected
    assert summary.deleted_rows_removed > 0 and summary.tombstones_kept == 0
    assert summary.partitions_rewritten >= 2  # the deletes' own day and older days they reach
    _, expected_latest = oracle.expected_snapshot(raw, deletes="apply")
    assert oracle.snapshot(table, output, columns) == expected_latest
    assert next(r for r in expected_latest if r[0] == "r0003")[4] == "back"
    assert not [r for r in expected_latest if r[0] in ("r0001", "r0002", "r0025", "r0040")]


def test_feature_added_later_is_merged_with_nulls_for_older_rows(
    spark: Any, catalog: Any, emulator: EmulatorProcess, offline_root: Path, tmp_path: Path
) -> None:
    group = Group.create(emulator, "s3://offline-bucket/cmp")
    group.put(batch(range(30), hours=10, seed=5))
    group.flush()
    source = source_of(group, offline_root)
    by_description = tmp_path / "described" / group.name
    by_path = tmp_path / "by-path" / group.name
    described = target_for(group, source, by_description)
    compact_feature_group(spark, described, settings())

    group.add_feature("z", "Integral")
    group.put([{**r, "z": 1000 + i} for i, r in enumerate(batch(range(20, 40), hours=10, seed=6, version=2))])
    group.flush()
    compact_feature_group(spark, target_for(group, source, by_description), settings())
    # Given by path (no FeatureDefinitions), the schema is merged from the files' footers.
    pathed = target_for(group, source, by_path, by_path=True)
    compact_feature_group(spark, pathed, settings())

    columns, expected = oracle.expected(local_files(source.path))
    assert "z" in columns
    assert oracle.compacted(iceberg(catalog, described.table_ref), columns) == expected
    assert oracle.compacted(iceberg(catalog, pathed.table_ref), columns) == expected
    z = columns.index("z")
    assert any(r[z] is None for r in expected) and any(r[z] is not None for r in expected)


def test_hour_partitions_and_fractional_event_time(
    spark: Any, catalog: Any, emulator: EmulatorProcess, offline_root: Path, tmp_path: Path
) -> None:
    features = [{"FeatureName": "id", "FeatureType": "String"}, {"FeatureName": "ts", "FeatureType": "Fractional"},
                {"FeatureName": "v", "FeatureType": "Fractional"}]
    group = Group.create(emulator, "s3://offline-bucket/cmp", features)
    base = START.timestamp()
    group.put([{"id": f"k{i % 7}", "ts": f"{base + i * 397.25:.3f}", "v": i} for i in range(40)])
    group.put([{"id": f"k{i % 7}", "ts": f"{base + i * 397.25:.3f}", "v": -i} for i in range(0, 40, 3)])
    group.flush()
    source = source_of(group, offline_root)
    output = tmp_path / "out" / group.name
    target = target_for(group, source, output)
    summary = compact_feature_group(spark, target, settings(partition_by="hour", compression="snappy"))
    columns, expected = oracle.expected(local_files(source.path), partition_by="hour", numeric_time=True)
    table = iceberg(catalog, target.table_ref)
    assert oracle.compacted(table, columns) == expected
    assert summary.partitions_rewritten == len({r[-1] for r in expected}) > 3
    assert all("/event_hour=" in key for key in files_by_partition(table))
    assert_files_sorted_and_compressed(table, "SNAPPY")
