"""A run killed at each point of its commit, then re-run, gives exactly the table clean runs give."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from featurestream.compaction import FeatureGroupTarget, compact_feature_group
from featurestream.dev.feature_store import EmulatorProcess
from tests.compaction import oracle
from tests.compaction.conftest import iceberg, settings, source_of, target_for
from tests.compaction.data import START, Group, batch, iso, local_files
from tests.compaction.test_compaction import assert_no_garbage, files_by_partition, local_path

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def run_and_kill(spec: dict[str, Any], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    child_env = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
    child_env.setdefault("PYSPARK_PYTHON", sys.executable)
    return subprocess.run([sys.executable, "-m", "tests.compaction.crash_run", json.dumps(spec)],
                          env=child_env, capture_output=True, text=True, timeout=300, check=False,
                          start_new_session=True)


def crash_spec(group: Group, target: FeatureGroupTarget, phase: str, **extra: Any) -> dict[str, Any]:
    ref = target.table_ref
    return {"name": group.name, "source": str(target.source), "output": str(target.output), "phase": phase,
            "table": {"catalog": ref.catalog, "namespace": ref.namespace, "name": ref.name},
            "features": group.description["FeatureDefinitions"], "settings": asdict(settings(snapshot=True)),
            **extra}


@pytest.mark.parametrize(("phase", "after_a_first_run"), [
    ("write", False),      # first run: data files written, nothing committed (the table has no snapshot)
    ("write", True),       # second run: ledger segment, latest/ and data files written, not committed
    ("committed", True),   # second run: committed, superseded snapshot and its files not yet expired
])  # test_s3.py kills a run on s3a:// mid-write
def test_killed_run_then_rerun_equals_clean_runs(
    phase: str, after_a_first_run: bool, spark: Any, catalog: Any, emulator: EmulatorProcess, offline_root: Path,
    tmp_path: Path,
) -> None:
    group = Group.create(emulator, "s3://offline-bucket/crash")
    group.put(batch(range(50), hours=30, seed=8))
    group.flush()
    source = source_of(group, offline_root)
    target = target_for(group, source, tmp_path / group.name)
    first = None
    if after_a_first_run:
        first = compact_feature_group(spark, target, settings(snapshot=True))
        columns, v1 = oracle.expected(local_files(source.path))
    group.put(batch(range(40, 70), hours=30, seed=8, version=3))
    for i in (5, 6, 7):
        group.delete(f"r{i:04d}", iso(START + timedelta(hours=31)))
    group.flush()

    result = run_and_kill(crash_spec(group, target, phase))
    assert result.returncode == -9, result.stderr[-2000:]

    columns, expected = oracle.expected(local_files(source.path))
    table = iceberg(catalog, target.table_ref)
    if phase == "committed":
        assert oracle.state(table)["version"] == 2
        assert oracle.compacted(table, columns) == expected
    elif first is not None:
        # Before the commit, readers see the previous snapshot, complete.
        assert table.current_snapshot().snapshot_id == first.snapshot_id
        assert oracle.compacted(table, columns) == v1
    else:
        assert table.current_snapshot() is None
    if phase == "write":  # the dead run's data files are there, named by no snapshot
        committed = {str(local_path(f)) for files in files_by_partition(table).values() for f in files} \
            if table.current_snapshot() else set()
        assert {str(p) for p in local_files(tmp_path / group.name / "data")} - committed

    # The dead run's lock is still there; a re-run that finds it stale takes it over.
    rerun = compact_feature_group(spark, target, settings(snapshot=True, stale_after_s=0.0))
    assert rerun.lock_taken_over_from is not None
    assert rerun.status == ("noop" if phase == "committed" else "compacted")
    if phase == "committed":
        # Superseded files go with the next commit's expiry: one more batch, one more run.
        group.put(batch(range(70, 72), hours=30, seed=8))
        group.flush()
        compact_feature_group(spark, target, settings(snapshot=True))
        columns, expected = oracle.expected(local_files(source.path))
    table = iceberg(catalog, target.table_ref)
    assert oracle.compacted(table, columns) == expected
    _, latest = oracle.expected_snapshot(local_files(source.path))
    assert oracle.snapshot(table, tmp_path / group.name, columns) == latest
    assert_no_garbage(table, tmp_path / group.name)
