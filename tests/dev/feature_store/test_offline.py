"""Offline replication: Glue layout, one row per accepted write, atomic files, S3 (moto) and Spark."""

from __future__ import annotations

import io
import re
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.dev.feature_store.helpers import (
    offline_files,
    offline_rows,
    record,
    region,
    runtime_client,
    sagemaker_client,
)

pytestmark = pytest.mark.feature_store

ACCOUNT = "123456789012"
V2 = {"EnableOnlineStore": True, "StorageType": "Standard_V2"}
T = ["2024-05-01T10:15:00Z", "2024-05-01T10:45:30.250Z", "2024-05-01T11:05:00Z", "2024-05-02T23:59:59Z"]


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def _write_history(rt: Any, name: str) -> list[tuple[str, str, int | None, bool]]:
    """Drive every kind of write; return the offline rows AWS would append, computed by hand."""
    expected: list[tuple[str, str, int | None, bool]] = []

    def put(rid: str, ts: str, n: int, **kwargs: Any) -> None:
        rt.put_record(FeatureGroupName=name, Record=record(id=rid, ts=ts, n=n, x=n / 2, s=f"s{n}"), **kwargs)

    put("a", T[1], 1)
    expected.append(("a", T[1], 1, False))
    put("a", T[0], 2)  # historic: offline only, but still offline
    expected.append(("a", T[0], 2, False))
    put("b", T[2], 3, TargetStores=["OfflineStore"])
    expected.append(("b", T[2], 3, False))
    put("c", T[2], 4, TargetStores=["OnlineStore"])  # no offline row
    rt.batch_write_record(Entries=[
        {"FeatureGroupName": name, "Record": record(id=f"batch{i}", ts=T[3], n=10 + i, x=(10 + i) / 2)}
        for i in range(3)
    ])
    expected += [(f"batch{i}", T[3], 10 + i, False) for i in range(3)]
    rt.delete_record(FeatureGroupName=name, RecordIdentifierValueAsString="a", EventTime=T[2])
    expected.append(("a", T[2], None, True))
    rt.delete_record(FeatureGroupName=name, RecordIdentifierValueAsString="batch0", EventTime=T[0])
    expected.append(("batch0", T[0], None, True))  # too old to delete online; marker still written
    rt.update_record(FeatureGroupName=name, RecordIdentifierValueAsString="batch1",
                     Features=record(ts=T[3], n=99, x=49.5))
    expected.append(("batch1", T[3], 99, False))
    with pytest.raises(rt.exceptions.ValidationError):
        put("bad", T[0], 0, TargetStores=["OnlineStore", "OnlineStore"])
    return expected


def test_offline_layout_rows_and_columns(emulator: Any, rt: Any, make_group: Any, offline_dir: Path) -> None:
    desc = make_group(online=V2)
    name = desc["FeatureGroupName"]
    started = time.time()
    expected = _write_history(rt, name)
    finished = time.time()
    emulator.flush()

    epoch = int(desc["CreationTime"].timestamp())
    layout = re.compile(
        rf"offline-bucket/conformance/{ACCOUNT}/sagemaker/{region()}/offline-store/{name}-{epoch}/data/"
        r"year=(\d{4})/month=(\d{2})/day=(\d{2})/hour=(\d{2})/(\d{8}T\d{6}Z)_[A-Za-z0-9]{16}\.parquet"
    )
    files = offline_files(offline_dir, desc)
    assert files
    got: list[tuple[str, str, int | None, bool]] = []
    for path in files:
        match = layout.fullmatch(path.relative_to(offline_dir).as_posix())
        assert match, path
        table = pq.ParquetFile(path).read()
        assert table.column_names == ["id", "ts", "n", "x", "s", "write_time", "api_invocation_time", "is_deleted"]
        assert table.schema.field("n").type == pa.int64()
        assert table.schema.field("x").type == pa.float64()
        assert table.schema.field("ts").type == pa.string()
        assert pa.types.is_timestamp(table.schema.field("write_time").type)
        assert pa.types.is_timestamp(table.schema.field("api_invocation_time").type)
        assert table.schema.field("is_deleted").type == pa.bool_()
        rows = table.to_pylist()
        # Partitioned by event time; the file is named after its latest event time.
        for row in rows:
            moment = datetime.fromtimestamp(_epoch(row["ts"]), tz=UTC)
            assert match.group(1, 2, 3, 4) == (
                f"{moment.year:04d}", f"{moment.month:02d}", f"{moment.day:02d}", f"{moment.hour:02d}")
            assert started - 1 <= row["api_invocation_time"].timestamp() <= finished + 1
            assert row["api_invocation_time"] <= row["write_time"]
            if row["is_deleted"]:
                assert row["n"] is None and row["x"] is None and row["s"] is None
            else:
                assert row["x"] == row["n"] / 2
        latest = max(datetime.fromtimestamp(_epoch(r["ts"]), tz=UTC) for r in rows)
        assert match.group(5) == latest.strftime("%Y%m%dT%H%M%SZ")
        got += [(r["id"], r["ts"], r["n"], r["is_deleted"]) for r in rows]
    assert Counter(got) == Counter(expected)

    # A second flush has nothing left to write: no duplicates.
    assert emulator.flush() == 0
    assert len(offline_rows(offline_dir, desc)) == len(expected)


def test_spark_reads_the_offline_store(spark: Any, emulator: Any, rt: Any, make_group: Any,
                                       offline_dir: Path) -> None:
    desc = make_group(online=V2)
    expected = _write_history(rt, desc["FeatureGroupName"])
    emulator.flush()
    uri = desc["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    df = spark.read.parquet(str(offline_dir / uri.removeprefix("s3://")))
    assert {"year", "month", "day", "hour", "write_time", "api_invocation_time", "is_deleted"} <= set(df.columns)
    rows = df.select("id", "ts", "n", "is_deleted").collect()
    got = Counter((r["id"], r["ts"], r["n"], r["is_deleted"]) for r in rows)
    assert got == Counter(expected)
    assert dict(df.dtypes)["write_time"] == "timestamp"


def test_files_are_never_visible_half_written(emulator: Any, rt: Any, make_group: Any,
                                              offline_dir: Path) -> None:
    """A reader polling the directory while flushes run only ever sees complete Parquet files."""
    desc = make_group()
    name = desc["FeatureGroupName"]
    rounds = 25
    done = threading.Event()
    problems: list[str] = []
    reads = 0

    def reader() -> None:
        nonlocal reads
        while not done.is_set():
            for path in offline_files(offline_dir, desc):
                try:
                    pq.ParquetFile(path).read()
                    reads += 1
                except FileNotFoundError:
                    continue
                except Exception as exc:
                    problems.append(f"{path.name}: {exc}")

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(rounds):
            rt.batch_write_record(Entries=[
                {"FeatureGroupName": name, "Record": record(id=f"r{i}-{j}", ts=T[j % 4], s="p" * 2000)}
                for j in range(25)
            ])
            emulator.flush()
    finally:
        done.set()
        thread.join()
    assert problems == []
    assert reads > 0
    assert len(offline_rows(offline_dir, desc)) == rounds * 25


def test_offline_store_to_s3(moto_s3: str, emulator_factory: Any) -> None:
    import os

    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    env = {**os.environ, "AWS_ENDPOINT_URL_S3": moto_s3}
    emu = emulator_factory(offline_local_dir=None, env=env)
    sm, rt = sagemaker_client(emu.url), runtime_client(emu.url)
    bucket = "fs-offline-s3-test"
    s3.create_bucket(Bucket=bucket)  # AWS checks the S3 location when the group is created
    sm.create_feature_group(
        FeatureGroupName="s3-group", RecordIdentifierFeatureName="id", EventTimeFeatureName="ts",
        FeatureDefinitions=[{"FeatureName": "id", "FeatureType": "String"},
                            {"FeatureName": "ts", "FeatureType": "String"},
                            {"FeatureName": "n", "FeatureType": "Integral"}],
        OnlineStoreConfig={"EnableOnlineStore": True},
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{bucket}/base"}},
    )
    desc = sm.describe_feature_group(FeatureGroupName="s3-group")
    for i in range(10):
        rt.put_record(FeatureGroupName="s3-group", Record=record(id=f"k{i}", ts=T[i % 4], n=i))

    assert emu.flush() == 10
    prefix = desc["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"].removeprefix(f"s3://{bucket}/")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    pattern = re.compile(
        re.escape(prefix) + r"/year=\d{4}/month=\d{2}/day=\d{2}/hour=\d{2}/\d{8}T\d{6}Z_\w{16}\.parquet"
    )
    assert keys and all(pattern.fullmatch(k) for k in keys)
    rows = []
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        rows += pq.read_table(io.BytesIO(body)).to_pylist()
    assert sorted((r["id"], r["n"]) for r in rows) == sorted((f"k{i}", i) for i in range(10))


def test_rows_queued_before_a_group_is_deleted_still_reach_the_offline_store(
    emulator: Any, sm: Any, rt: Any, make_group: Any, offline_dir: Path
) -> None:
    desc = make_group()
    name = desc["FeatureGroupName"]
    for i in range(5):
        rt.put_record(FeatureGroupName=name, Record=record(id=f"d{i}", ts=T[0], n=i))
    sm.delete_feature_group(FeatureGroupName=name)
    emulator.flush()
    assert sorted(r["n"] for r in offline_rows(offline_dir, desc)) == list(range(5))


def test_an_interrupted_flush_is_replayed_into_the_same_files(tmp_path: Path) -> None:
    """A crash between writing files and dequeuing their rows: the replay rewrites the same
    file names with the same rows, so nothing is lost and nothing is doubled."""
    from featurestream.dev.feature_store.model import build_feature_group
    from featurestream.dev.feature_store.offline import LocalDirSink, OfflineReplicator
    from featurestream.dev.feature_store.records import validate_record
    from featurestream.dev.feature_store.store import Store

    class CrashBeforeDequeue(Store):
        def complete_flush(self, gid: int, seq_hi: int) -> None:
            raise RuntimeError("killed after the files were written")

    def open_store(kind: type[Store] = Store) -> Store:
        return kind(tmp_path / "db.sqlite3", "us-east-1", ACCOUNT)

    store = open_store(CrashBeforeDequeue)
    group = build_feature_group({
        "FeatureGroupName": "replay", "RecordIdentifierFeatureName": "id", "EventTimeFeatureName": "ts",
        "FeatureDefinitions": [{"FeatureName": "id", "FeatureType": "String"},
                               {"FeatureName": "ts", "FeatureType": "String"}],
        "OfflineStoreConfig": {"S3StorageConfig": {"S3Uri": "s3://bkt/p"}},
    }, "us-east-1", ACCOUNT, time.time())
    store.create_group(group)
    gid, _ = store.resolve("replay")
    for i in range(40):
        rec = validate_record(group, record(id=f"r{i}", ts=T[i % 4]))
        store.put(gid, rec, online=False, offline=True, expires_at=None, api_time=time.time())

    class CrashAfterWriting(LocalDirSink):
        def __init__(self, root: Path) -> None:
            super().__init__(root)
            self.names: list[str] = []

        def write(self, uri: str, data: bytes) -> None:
            super().write(uri, data)
            self.names.append(uri)

    sink = CrashAfterWriting(tmp_path / "offline")
    result = OfflineReplicator(store, sink, 3600).flush()  # files written, rows not yet dequeued
    assert result.rows == 0 and "killed" in result.blocked["replay"]
    assert sink.names and store.queued_rows() == 40
    store.close()

    store = open_store()
    replay_sink = CrashAfterWriting(tmp_path / "offline")
    assert OfflineReplicator(store, replay_sink, 3600).flush().rows == 40
    assert sorted(replay_sink.names) == sorted(sink.names)
    files = [p for p in (tmp_path / "offline").rglob("*.parquet") if not p.name.startswith(".")]
    ids = [r["id"] for p in files for r in pq.ParquetFile(p).read().to_pylist()]
    assert sorted(ids) == sorted(f"r{i}" for i in range(40))
    assert store.queued_rows() == 0
    store.close()
