"""The same guarantees on s3a:// against moto's S3: the emulator replicates the offline store to S3,
the group is found through DescribeFeatureGroup, a run killed mid-way is re-run to the clean result."""

from __future__ import annotations

import os
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from featurestream import iceberg as iceberg_catalog
from featurestream.compaction import compact_feature_group
from featurestream.compaction.targets import resolve_targets, settings_from_config
from featurestream.config.compaction import CompactionConfig
from featurestream.connectors.offline_store import StoreUri
from featurestream.dev.feature_store import EmulatorProcess
from featurestream.io.s3a import configure_session
from tests.compaction import oracle
from tests.compaction.conftest import iceberg, renamed, s3_client
from tests.compaction.data import START, Group, batch, iso, region
from tests.compaction.test_compaction import files_by_partition
from tests.compaction.test_crash import crash_spec, run_and_kill

pytestmark = pytest.mark.integration


def download(client: Any, uri: StoreUri, into: Path) -> list[Path]:
    """Every object under `uri` into `into`, keeping the relative layout."""
    files = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=uri.bucket, Prefix=uri.key + "/"):
        for item in page.get("Contents", []):
            target = into / item["Key"][len(uri.key) + 1:]
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(uri.bucket, item["Key"], str(target))
            files.append(target)
    return files


def test_compaction_on_s3a_with_a_killed_run(spark: Any, catalog: Any, moto_s3: str, s3_env: dict[str, str],
                                              tmp_path: Path) -> None:
    client = s3_client(moto_s3)
    bucket = f"fs-compaction-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    emulator = EmulatorProcess(tmp_path / "emulator", env={**os.environ, **s3_env}, flush_interval_s=3600).start()
    try:
        group = Group.create(emulator, f"s3://{bucket}/offline")
        group.put(batch(range(60), hours=30, seed=11))
        group.flush()
        group.put(batch(range(0, 60, 3), hours=30, seed=11, version=2))
        group.delete("r0007", iso(START + timedelta(hours=31)))
        group.flush()
        config = CompactionConfig.model_validate({
            "output": f"s3://{bucket}/compacted", "region": region(), "feature_groups": [{"name": group.name}],
            "gc_grace": "0s", "snapshot": True, "target_file_size": "64KB",
        })
        s3_catalog = renamed(catalog, f"fs_s3_{uuid.uuid4().hex[:8]}")
        [target] = resolve_targets(config, Path("compaction.yaml"), client=group.sm, catalog=s3_catalog.name)
    finally:
        emulator.stop()
    assert target.source == StoreUri.parse(group.resolved_uri)
    assert target.output == StoreUri.parse(f"s3://{bucket}/compacted/{group.name}")
    configure_session(spark, moto_s3, region(), [bucket])
    # As the CLI does it: S3A set up for the buckets before the catalog is first used.
    iceberg_catalog.configure_session(spark, s3_catalog)

    killed = run_and_kill(crash_spec(group, target, "write", bucket=bucket), env=s3_env)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert client.list_objects_v2(Bucket=bucket, Prefix=f"compacted/{group.name}/data/")["KeyCount"] > 0
    assert iceberg(s3_catalog, target.table_ref).current_snapshot() is None

    settings = replace(settings_from_config(config), stale_after_s=0.0)
    summary = compact_feature_group(spark, target, settings)
    assert summary.status == "compacted" and summary.lock_taken_over_from is not None
    again = compact_feature_group(spark, target, settings)
    assert again.status == "noop"

    raw = [p for p in download(client, target.source, tmp_path / "raw") if p.suffix == ".parquet"]
    output = tmp_path / "compacted"
    download(client, target.output, output)
    columns, expected = oracle.expected(raw)
    table = iceberg(s3_catalog, target.table_ref)  # pyiceberg reads S3 itself
    assert oracle.compacted(table, columns) == expected
    _, latest = oracle.expected_snapshot(raw)
    assert oracle.snapshot(table, output, columns) == latest
    # The dead run's files were removed as orphans: data/ holds exactly the snapshot's files.
    committed = {f.split(f"/{group.name}/", 1)[1] for files in files_by_partition(table).values() for f in files}
    assert {str(p.relative_to(output)) for p in (output / "data").rglob("*.parquet")} == committed
