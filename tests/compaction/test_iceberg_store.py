"""`compact` on an Iceberg-format offline store (TableFormat Iceberg in the emulator): the group's own
table is rewritten with the dedup rules, read back by pyiceberg equal to the DuckDB oracle over
the rows it held before; a second run with nothing appended is a noop."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from featurestream import iceberg as iceberg_catalog
from featurestream.compaction import compact_feature_group
from featurestream.compaction.targets import resolve_targets
from featurestream.config.compaction import CompactionConfig
from featurestream.dev.feature_store import EmulatorProcess
from featurestream.io import hadoop_fs
from featurestream.io.s3a import configure_session
from tests.compaction import oracle
from tests.compaction.conftest import settings
from tests.compaction.data import FEATURES, Group, batch, region

pytestmark = pytest.mark.integration
BUCKET = "featurestream-offline"  # created by the stack's S3 service, where the emulator puts Iceberg groups


def test_an_iceberg_offline_store_is_rewritten_with_the_rules(spark: Any, catalog: Any, stack_env: dict[str, str],
                                                              tmp_path: Path) -> None:
    emulator = EmulatorProcess(tmp_path / "emulator", catalog_profile="local", flush_interval_s=3600).start()
    try:
        group = Group(emulator, f"ice-{uuid.uuid4().hex[:10]}")
        group.sm.create_feature_group(
            FeatureGroupName=group.name, RecordIdentifierFeatureName="id", EventTimeFeatureName="ts",
            FeatureDefinitions=FEATURES, OnlineStoreConfig={"EnableOnlineStore": True},
            OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{BUCKET}/iceberg-groups"},
                                "TableFormat": "Iceberg"})
        group.refresh()
        group.put(batch(range(40), hours=20, seed=3))
        group.flush()
        group.put(batch(range(0, 40, 2), hours=20, seed=3, version=5))  # superseding versions, a later flush
        group.flush()
        configure_session(spark, stack_env["AWS_ENDPOINT_URL_S3"], region(), [BUCKET])
        # Spark's catalog may have been set up before S3A knew this bucket: the file system it
        # will get from Hadoop's cache is made now, with the bucket's settings.
        assert hadoop_fs.exists(spark, f"s3://{BUCKET}/")
        store_catalog = catalog
        config = CompactionConfig.model_validate({"output": str(tmp_path / "out"), "region": region(),
                                                  "feature_groups": [{"name": group.name}], "gc_grace": "0s"})
        [target] = resolve_targets(config, Path("compaction.yaml"), client=group.sm, catalog=store_catalog.name)
    finally:
        emulator.stop()
    assert target.source_table is not None
    names = group.description["OfflineStoreConfig"]["DataCatalogConfig"]
    table = iceberg_catalog.load_catalog(store_catalog).load_table((names["Database"], names["TableName"]))
    before = tmp_path / "before.parquet"
    pq.write_table(table.scan().to_arrow(), before)
    columns, expected = oracle.expected([before])

    summary = compact_feature_group(spark, target, settings())
    table = table.refresh()
    got = oracle.compacted_rows(table, columns)
    assert got == sorted((row[:-1] for row in expected), key=repr)  # no event_date: the table keeps its layout
    assert summary.status == "compacted" and summary.superseded_removed == 20
    assert summary.rows_out == len(expected) and summary.snapshot_id == table.current_snapshot().snapshot_id
    assert summary.snapshots_expired >= 1 and len(table.snapshots()) == 1

    again = compact_feature_group(spark, target, settings())
    assert again.status == "noop" and again.snapshot_id == summary.snapshot_id
