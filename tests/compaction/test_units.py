"""Offline-store paths, configuration, time ranges and file sizing: no services, no Spark."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from featurestream.cli.commands.compact import hour_range
from featurestream.compaction.layout import files_for, partition_key_of_hour
from featurestream.config.compaction import load_compaction_config, parse_size
from featurestream.connectors.offline_store import (
    OfflineStoreError,
    StoreUri,
    list_source_files,
    parse_hour_partition,
)
from featurestream.errors import ConfigError
from featurestream.io.s3a import s3a_options, to_s3a

ROOT = Path(__file__).resolve().parents[2]


def test_store_uris() -> None:
    s3 = StoreUri.parse("s3a://bucket/a/b/")
    assert str(s3) == "s3://bucket/a/b" and s3.spark_path() == "s3a://bucket/a/b"
    assert s3.join("data", "x.parquet").relative_to(s3) == "data/x.parquet"
    assert s3.join("/data//", "x.parquet") == s3.join("data/x.parquet") and s3.join() == s3
    with pytest.raises(ValueError, match="leads out of"):  # a side file's path must stay under its root
        s3.join("../other/x.parquet")
    local = StoreUri.parse("file:///tmp/x")
    assert local.spark_path() == "file:///tmp/x" and not local.is_s3
    assert local.join("data", "x.parquet").path == Path("/tmp/x/data/x.parquet")
    with pytest.raises(OfflineStoreError):
        StoreUri.parse("s3:///key")
    with pytest.raises(OfflineStoreError):
        StoreUri.parse("gs://bucket/key")
    assert to_s3a("s3://b/k") == "s3a://b/k"


def test_hour_partitions() -> None:
    moment = datetime(2026, 3, 4, 5, 59, tzinfo=UTC)
    assert parse_hour_partition("data/year=2026/month=03/day=04/hour=05") == moment.replace(minute=0)
    with pytest.raises(OfflineStoreError):
        parse_hour_partition("year=2026/month=13/day=04/hour=05")
    assert partition_key_of_hour(moment, "day") == "event_date=2026-03-04"
    assert partition_key_of_hour(moment, "hour") == "event_date=2026-03-04/event_hour=5"


def test_listing_skips_hidden_and_foreign_files_and_honours_the_hour_range(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for hour in (22, 23):
        folder = root / f"year=2026/month=11/day=20/hour={hour}"
        folder.mkdir(parents=True)
        (folder / "a.parquet").write_bytes(b"x" * hour)
        (folder / ".tmp.parquet").write_bytes(b"x")
    (root / "_SUCCESS").write_bytes(b"")
    (root / "stray.parquet").write_bytes(b"x")
    everything = list_source_files(StoreUri.parse(root))
    assert [(f.hour.hour, f.size) for f in everything] == [(22, 22), (23, 23)]
    late = list_source_files(StoreUri.parse(root), since=datetime(2026, 11, 20, 23, tzinfo=UTC),
                             until=datetime(2026, 11, 21, tzinfo=UTC))
    assert [f.hour.hour for f in late] == [23]


def test_hour_range_widens_to_whole_hours_and_accepts_ages() -> None:
    now = datetime(2026, 11, 26, 10, 30, tzinfo=UTC)
    assert hour_range("2026-11-20T13:20Z", "2026-11-21T08:10:00+02:00", now) == (
        datetime(2026, 11, 20, 13, tzinfo=UTC), datetime(2026, 11, 21, 7, tzinfo=UTC))
    assert hour_range("48h", None, now) == (datetime(2026, 11, 24, 10, tzinfo=UTC), None)
    assert hour_range(None, "2026-11-21", now) == (None, datetime(2026, 11, 21, tzinfo=UTC))
    with pytest.raises(ConfigError, match="--until"):
        hour_range("2026-11-21", "2026-11-20", now)
    with pytest.raises(ConfigError, match="--since"):
        hour_range("yesterday", None, now)


def test_file_count_keeps_files_at_or_under_the_target() -> None:
    assert files_for(0, 100) == 1
    assert files_for(100, 100) == 1
    assert files_for(101, 100) == 2
    assert parse_size("128MB") == 128 * 1024**2 and parse_size("1.5GB") == int(1.5 * 1024**3)


def test_s3a_options_are_scoped_to_buckets() -> None:
    assert s3a_options(None, "us-east-1", ["b"]) == {}
    options = s3a_options("http://127.0.0.1:15000", "us-east-1", ["b"])
    assert options["fs.s3a.bucket.b.endpoint"] == "http://127.0.0.1:15000"
    assert options["fs.s3a.bucket.b.path.style.access"] == "true"
    assert options["fs.s3a.bucket.b.connection.ssl.enabled"] == "false"
    assert "fs.s3a.endpoint" in s3a_options("https://s3.example", "us-east-1")


def test_example_configs_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("FEATURESTREAM_COMPACTED_URI", "s3://compacted/prod")
    for path in sorted((ROOT / "conf" / "compaction").glob("*.yaml")):
        config = load_compaction_config(path)
        assert config.feature_groups


@pytest.mark.parametrize(("text", "field", "reason"), [
    ("output: /tmp/x\nfeature_groups: [{name: fg}]\ncolour: blue\n", "colour", "unknown key"),
    ("output: /tmp/x\nfeature_groups: []\n", "feature_groups", "at least 1"),
    ("output: /tmp/x\nfeature_groups: [{name: fg, path: /data}]\n", "feature_groups[0]", "record_identifier"),
    ("output: /tmp/x\nfeature_groups: [{name: fg}, {name: fg}]\n", "feature_groups", "listed twice"),
    ("output: /tmp/x\nfeature_groups: [{name: fg}]\ntarget_file_size: huge\n", "target_file_size", "bad size"),
    ("output: /tmp/x\nfeature_groups: [{name: fg}]\ndeletes: purge\n", "deletes", "keep"),
    ("output: /tmp/x\nfeature_groups: [{name: fg}]\nlock: {stale_after: 1m, heartbeat: 45s}\n", "lock", "half"),
    ("output: /tmp/x\nfeature_groups: [{name: 'bad name'}]\n", "feature_groups[0].name", "valid feature group"),
])
def test_config_errors_name_file_and_field(tmp_path: Path, text: str, field: str, reason: str) -> None:
    path = tmp_path / "compaction.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_compaction_config(path)
    assert error.value.field == field
    assert reason in error.value.reason
    assert str(error.value).startswith(str(path))


def test_file_keys_land_one_per_task(spark: Any) -> None:
    """The Python hash matches Spark's: key k of n goes to partition k of `repartition(n, key)`."""
    from pyspark.sql import functions as F

    from featurestream.compaction.layout import hash_partition_keys, spark_hash_int

    values = [0, 1, -1, 42, 2**31 - 1, -(2**31), *range(1000, 1050)]
    # Literal tables (VALUES): no Python worker needed.
    frame = spark.sql(f"SELECT CAST(v AS INT) AS v FROM VALUES {', '.join(f'({v})' for v in values)} AS t(v)")
    assert [r["h"] for r in frame.select(F.hash("v").alias("h")).collect()] == [spark_hash_int(v) for v in values]
    keys = hash_partition_keys(13)
    table = spark.sql(f"SELECT CAST(k AS INT) AS k FROM VALUES {', '.join(f'({k})' for k in keys)} AS t(k)")
    placed = (table.repartition(13, "k")
              .select("k", F.spark_partition_id().alias("p")).collect())
    assert sorted((keys.index(r["k"]), r["p"]) for r in placed) == [(i, i) for i in range(13)]
