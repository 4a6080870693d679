"""The online-vs-offline side reads the compacted output plus only the files the compaction's
ledger does not hold yet, and finds each entity's newest row across both (local files, a real
compaction run into an Iceberg table of a Hadoop catalog in a folder: no service)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from featurestream.compaction import CompactionSettings, FeatureGroupTarget, TableRef, compact_feature_group
from featurestream.config import load_feature_group
from featurestream.connectors.offline_store import StoreUri
from featurestream.consistency.offline import newest_rows, uncompacted_files

GROUP = """
entity: {key: card_id, type: string}
event_time: {field: event_time}
source:
  type: kafka
  topic: t
  format: json
  schema: {card_id: string, amount: double, event_time: timestamp}
windows: {tile: 1m, allowed_lateness: 2m}
features:
  - {name: n, agg: count, windows: [5m]}
online_store: {feature_group_name: offline-reader}
"""


def _write(data: Path, hour: str, name: str, rows: list[tuple[str, str, int]]) -> Path:
    """One offline-store file in the Glue layout: (card, EventTime, n_5m) rows."""
    folder = data / "year=2026" / "month=12" / "day=01" / f"hour={hour}"
    folder.mkdir(parents=True, exist_ok=True)
    written = datetime(2026, 12, 1, int(hour), 30, tzinfo=UTC)
    table = pa.table({"card_id": [r[0] for r in rows], "event_time": [r[1] for r in rows],
                      "n_5m": pa.array([r[2] for r in rows], pa.int64()),
                      "write_time": pa.array([written] * len(rows), pa.timestamp("us", tz="UTC")),
                      "api_invocation_time": pa.array([written] * len(rows), pa.timestamp("us", tz="UTC")),
                      "is_deleted": [False] * len(rows)})
    path = folder / name
    pq.write_table(table, path)
    return path


def test_newest_rows_come_from_the_compacted_output_and_the_files_not_compacted_yet(
        spark: Any, tmp_path: Path) -> None:
    spec_file = tmp_path / "g.yaml"
    spec_file.write_text(GROUP)
    spec = load_feature_group(spec_file)
    data, warehouse = tmp_path / "offline" / "data", tmp_path / "warehouse"
    # A catalog in a folder: the table's location is <warehouse>/<namespace>/<table>.
    spark.conf.set("spark.sql.catalog.fs_consistency_test", "org.apache.iceberg.spark.SparkCatalog")
    spark.conf.set("spark.sql.catalog.fs_consistency_test.type", "hadoop")
    spark.conf.set("spark.sql.catalog.fs_consistency_test.warehouse", str(warehouse))
    ref = TableRef("fs_consistency_test", "compacted", f"offline_reader_{tmp_path.name}".replace("-", "_"))
    output = warehouse / ref.namespace / ref.name
    old = [_write(data, "10", "a.parquet", [("a", "2026-12-01T10:00:00.000Z", 1),
                                            ("b", "2026-12-01T10:05:00.000Z", 2)]),
           _write(data, "11", "b.parquet", [("b", "2026-12-01T11:00:00.000Z", 3)])]
    target = FeatureGroupTarget("offline-reader", StoreUri.parse(data), StoreUri.parse(output), "card_id", "event_time",
                                table=ref)
    compact_feature_group(spark, target, CompactionSettings(target_file_bytes=64 * 1024, gc_grace_s=0.0))
    new = _write(data, "12", "c.parquet", [("a", "2026-12-01T12:00:00.000Z", 4)])
    for path in old[1:]:
        path.unlink()  # b's newest row now lives only in the compacted output

    files, _ = uncompacted_files(spark, str(data), str(output), None)
    assert [Path(f.removeprefix("file:")) for f in files] == [new]
    rows, figures = newest_rows(spark, spec, str(data), str(output), None, ["a", "b", "c"])
    assert {k: (v["event_time"], v["n_5m"]) for k, v in rows.items()} == {
        "a": ("2026-12-01T12:00:00.000Z", 4), "b": ("2026-12-01T11:00:00.000Z", 3)}
    assert figures == {"uncompacted_files": 1, "compacted": 1, "iceberg_table": 0}


def test_an_iceberg_format_groups_table_is_read_instead_of_files(spark: Any, tmp_path: Path) -> None:
    """`TableFormat: Iceberg`: the offline store is SageMaker's table, read whole (the Glue folder
    beside it is not looked at)."""
    spec_file = tmp_path / "g.yaml"
    spec_file.write_text(GROUP)
    spec = load_feature_group(spec_file)
    spark.conf.set("spark.sql.catalog.fs_consistency_ice", "org.apache.iceberg.spark.SparkCatalog")
    spark.conf.set("spark.sql.catalog.fs_consistency_ice.type", "hadoop")
    spark.conf.set("spark.sql.catalog.fs_consistency_ice.warehouse", str(tmp_path / "warehouse"))
    table = "fs_consistency_ice.sagemaker_featurestore.offline_reader_1764979200"
    spark.sql(f"CREATE TABLE {table} (card_id string, event_time string, n_5m bigint, write_time timestamp, "
              "api_invocation_time timestamp, is_deleted boolean) USING iceberg PARTITIONED BY (days(write_time))")
    written = "timestamp'2026-12-01 13:00:00'"
    spark.sql(f"INSERT INTO {table} VALUES "
              f"('a', '2026-12-01T10:00:00.000Z', 1, {written}, {written}, false), "
              f"('a', '2026-12-01T12:00:00.000Z', 4, {written}, {written}, false), "
              f"('b', '2026-12-01T11:00:00.000Z', 3, {written}, {written}, false), "
              f"('b', '2026-12-01T11:30:00.000Z', NULL, {written}, {written}, true)")
    _write(tmp_path / "glue" / "data", "10", "x.parquet", [("a", "2026-12-01T23:00:00.000Z", 9)])  # not read

    rows, figures = newest_rows(spark, spec, str(tmp_path / "glue" / "data"), None, None, ["a", "b", "c"],
                                table=table)
    assert {k: (v["event_time"], v["n_5m"], v["is_deleted"]) for k, v in rows.items()} == {
        "a": ("2026-12-01T12:00:00.000Z", 4, False), "b": ("2026-12-01T11:30:00.000Z", None, True)}
    assert figures == {"uncompacted_files": 0, "compacted": 0, "iceberg_table": 1}
