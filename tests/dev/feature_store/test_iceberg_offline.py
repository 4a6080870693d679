"""Iceberg offline stores (TableFormat Iceberg): the group's table in the project's catalog (the
local profile's: the stack's PostgreSQL, files on its S3), read by pyiceberg and by Spark's own
Iceberg reader; every acknowledged write in it exactly once, also after a kill -9 mid-flush."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from featurestream import iceberg
from featurestream.config import load_profile
from featurestream.dev.feature_store import EmulatorProcess
from featurestream.dev.feature_store.iceberg_offline import FLUSHED_SEQ
from featurestream.dev.feature_store.process import EmulatorStartError
from featurestream.io import s3a
from tests.dev.feature_store.helpers import record, runtime_client, sagemaker_client, unique_name

BUCKET = "featurestream-offline"  # created by the stack's S3 service
FEATURES = [{"FeatureName": "id", "FeatureType": "String"}, {"FeatureName": "ts", "FeatureType": "String"},
            {"FeatureName": "n", "FeatureType": "Integral"}, {"FeatureName": "x", "FeatureType": "Fractional"}]
Row = tuple[str, str, int, float | None, bool]


def _emulator(base: Path, env: dict[str, str] | None = None) -> EmulatorProcess:
    return EmulatorProcess(base / "state", env=env, catalog_profile="local", flush_interval_s=3600).start()


@pytest.fixture
def iceberg_emulator(stack_env: dict[str, str], tmp_path: Path) -> Iterator[EmulatorProcess]:
    emu = _emulator(tmp_path)
    yield emu
    emu.stop()


def _create(emu: EmulatorProcess) -> dict[str, Any]:
    sm = sagemaker_client(emu.url)
    name = unique_name("ice")
    sm.create_feature_group(
        FeatureGroupName=name, RecordIdentifierFeatureName="id", EventTimeFeatureName="ts",
        FeatureDefinitions=FEATURES, OnlineStoreConfig={"EnableOnlineStore": True},
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{BUCKET}/iceberg-groups"}, "TableFormat": "Iceberg"})
    return sm.describe_feature_group(FeatureGroupName=name)  # type: ignore[no-any-return]


def _put(emu: EmulatorProcess, name: str, first: int, count: int) -> list[Row]:
    """Acknowledged writes: a batch of 25 at a time, then a soft delete of the first id."""
    rt = runtime_client(emu.url)
    written: list[Row] = []
    for start in range(first, first + count, 25):
        entries = [{"FeatureGroupName": name, "Record": record(id=f"k{i}", ts=f"2026-11-01T00:{i % 60:02d}:00Z",
                                                                n=i, x=i / 4)}
                   for i in range(start, min(start + 25, first + count))]
        answer = rt.batch_write_record(Entries=entries)
        assert not answer["Errors"] and not answer.get("UnprocessedEntries")
        written += [(f"k{i}", f"2026-11-01T00:{i % 60:02d}:00Z", i, i / 4, False)
                    for i in range(start, min(start + 25, first + count))]
    rt.delete_record(FeatureGroupName=name, RecordIdentifierValueAsString=f"k{first}",
                     EventTime="2026-11-02T00:00:00Z")
    return [*written, (f"k{first}", "2026-11-02T00:00:00Z", None, None, True)]  # type: ignore[list-item]


def _table(describe: dict[str, Any]) -> Any:
    cfg = describe["OfflineStoreConfig"]["DataCatalogConfig"]
    return iceberg.load_catalog(iceberg.from_profile(load_profile("local"))).load_table((cfg["Database"],
                                                                                        cfg["TableName"]))


def _rows(records: list[dict[str, Any]]) -> Counter[Row]:
    return Counter((r["id"], r["ts"], r["n"], r["x"], r["is_deleted"]) for r in records)


def test_an_iceberg_group_holds_each_acknowledged_write_once(iceberg_emulator: EmulatorProcess, spark: Any,
                                                             stack_env: dict[str, str]) -> None:
    describe = _create(iceberg_emulator)
    offline = describe["OfflineStoreConfig"]
    name = describe["FeatureGroupName"]
    table_name = f"{name.lower().replace('-', '_')}_{int(describe['CreationTime'].timestamp())}"
    assert offline["TableFormat"] == "Iceberg"
    assert offline["DataCatalogConfig"] == {"TableName": table_name, "Catalog": "AwsDataCatalog",
                                            "Database": "sagemaker_featurestore"}
    written = _put(iceberg_emulator, name, 0, 60)
    iceberg_emulator.flush()
    written += _put(iceberg_emulator, name, 100, 10)  # a second flush, a second snapshot
    iceberg_emulator.flush()

    table = _table(describe)
    resolved = offline["S3StorageConfig"]["ResolvedOutputS3Uri"]
    assert table.location() == resolved.removesuffix("/data")
    assert all(f.file.file_path.startswith(resolved + "/") for f in table.scan().plan_files())
    assert [f.name for f in table.schema().fields] == ["id", "ts", "n", "x", "write_time", "api_invocation_time",
                                                       "is_deleted"]
    assert str(table.spec().fields[0].transform) == "day" and table.spec().fields[0].name == "write_time_day"
    assert _rows(table.scan().to_arrow().to_pylist()) == Counter(written)  # pyiceberg

    # Spark's Iceberg reader (the runtime jar), through the same catalog: not our code.
    catalog = iceberg.from_profile(load_profile("local"))
    s3a.configure_session(spark, stack_env["AWS_ENDPOINT_URL_S3"], "us-east-1", [BUCKET])
    iceberg.configure_session(spark, catalog)
    seen = spark.table(catalog.spark_table("sagemaker_featurestore", table_name)).collect()
    assert _rows([r.asDict() for r in seen]) == Counter(written)


@pytest.mark.parametrize("crash_point", ["iceberg-before-commit", "iceberg-after-commit"])
def test_a_kill_9_mid_flush_neither_loses_nor_doubles_a_write(stack_env: dict[str, str], tmp_path: Path,
                                                              crash_point: str) -> None:
    import os

    emu = _emulator(tmp_path, env={**os.environ, "FEATURESTREAM_FS_CRASH_POINT": crash_point})
    try:
        describe = _create(emu)
        name = describe["FeatureGroupName"]
        written = _put(emu, name, 0, 40)
        with pytest.raises((OSError, EmulatorStartError)):  # the process SIGKILLs itself inside the flush
            emu.flush()
        emu.kill()  # reap it
        emu.env = dict(os.environ)
        emu.start()  # same state: the flush plan is replayed
        written += _put(emu, name, 200, 5)
        emu.flush()
        table = _table(describe)
        assert _rows(table.scan().to_arrow().to_pylist()) == Counter(written)
        assert table.properties[FLUSHED_SEQ] == table.current_snapshot().summary[FLUSHED_SEQ]
    finally:
        emu.stop()


def test_a_glue_format_group_gets_the_glue_table_sagemaker_registers(iceberg_emulator: EmulatorProcess,
                                                                      stack_env: dict[str, str]) -> None:
    import boto3

    sm = sagemaker_client(iceberg_emulator.url)
    glue = boto3.client("glue", endpoint_url=stack_env["AWS_ENDPOINT_URL_GLUE"])
    described = []
    for disable in (False, True):
        name = unique_name("glue")
        sm.create_feature_group(
            FeatureGroupName=name, RecordIdentifierFeatureName="id", EventTimeFeatureName="ts",
            FeatureDefinitions=FEATURES, OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{BUCKET}/glue"},
                                                             "DisableGlueTableCreation": disable})
        described.append(sm.describe_feature_group(FeatureGroupName=name)["OfflineStoreConfig"])
    cfg = described[0]["DataCatalogConfig"]
    table = glue.get_table(DatabaseName=cfg["Database"], Name=cfg["TableName"])["Table"]
    storage = table["StorageDescriptor"]
    assert storage["Location"] == described[0]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    assert [(c["Name"], c["Type"]) for c in storage["Columns"]] == [
        ("id", "string"), ("ts", "string"), ("n", "bigint"), ("x", "double"), ("write_time", "timestamp"),
        ("api_invocation_time", "timestamp"), ("is_deleted", "boolean")]
    assert [k["Name"] for k in table["PartitionKeys"]] == ["year", "month", "day", "hour"]
    assert "DataCatalogConfig" not in described[1]  # DisableGlueTableCreation: nothing registered
