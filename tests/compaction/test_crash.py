"""A run killed at any point, then re-run, gives exactly what clean runs give."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from featurestream.compaction import compact_feature_group
from featurestream.connectors.offline_store import StoreUri
from featurestream.dev.feature_store import EmulatorProcess
from tests.compaction import oracle
from tests.compaction.conftest import settings, source_of, target_for
from tests.compaction.data import START, Group, batch, iso, local_files
from tests.compaction.test_compaction import assert_no_garbage

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class History:
    group: Group
    source: StoreUri
    v1: Path  # the output after a clean first run (batch 1 only)
    v2: Path  # the output after a clean second run (batches 1 and 2)


@pytest.fixture(scope="module")
def history(spark: Any, emulator: EmulatorProcess, offline_root: Path,
            tmp_path_factory: pytest.TempPathFactory) -> History:
    group = Group.create(emulator, "s3://offline-bucket/crash")
    group.put(batch(range(50), hours=30, seed=8))
    group.flush()
    source = source_of(group, offline_root)
    base = tmp_path_factory.mktemp("crash-reference")
    v2 = base / "v2" / group.name
    compact_feature_group(spark, target_for(group, source, v2), settings(snapshot=True))
    v1 = base / "v1" / group.name
    shutil.copytree(v2, v1)
    group.put(batch(range(40, 70), hours=30, seed=8, version=3))
    for i in (5, 6, 7):
        group.delete(f"r{i:04d}", iso(START + timedelta(hours=31)))
    group.flush()
    compact_feature_group(spark, target_for(group, source, v2), settings(snapshot=True))
    return History(group, source, v1, v2)


def run_and_kill(spec: dict[str, Any], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    child_env = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
    child_env.setdefault("PYSPARK_PYTHON", sys.executable)
    return subprocess.run([sys.executable, "-m", "tests.compaction.crash_run", json.dumps(spec)],
                          env=child_env, capture_output=True, text=True, timeout=300, check=False,
                          start_new_session=True)


def crash_spec(group: Group, source: StoreUri, output: StoreUri, phase: str, **extra: Any) -> dict[str, Any]:
    options = asdict(settings(snapshot=True))
    return {"name": group.name, "source": str(source), "output": str(output), "phase": phase,
            "features": group.description["FeatureDefinitions"], "settings": options, **extra}


@pytest.mark.parametrize(("phase", "resume_from_v1"), [
    ("write", False),      # first run, Spark's write half done: task files under data/_temporary
    ("ledger", True),      # second run: new files and ledger segment written, manifest not switched
    ("committed", True),   # second run: manifest switched, superseded files not yet deleted
])  # test_s3.py kills a run on s3a:// after its files are written ("written")
def test_killed_run_then_rerun_equals_clean_runs(
    phase: str, resume_from_v1: bool, history: History, spark: Any, tmp_path: Path
) -> None:
    output = tmp_path / history.group.name
    if resume_from_v1:
        shutil.copytree(history.v1, output)
    result = run_and_kill(crash_spec(history.group, history.source, StoreUri.parse(output), phase))
    assert result.returncode == -9, result.stderr[-2000:]

    columns, expected = oracle.expected(local_files(history.source.path))
    committed = oracle.manifest(output)["version"] if (output / "_compaction/manifest.json").exists() else 0
    if phase == "committed":
        assert committed == 2
        assert oracle.compacted(output, columns) == expected
    else:
        # Before the switch, readers see the previous committed state, complete.
        assert committed == (1 if resume_from_v1 else 0)
        if resume_from_v1:
            assert oracle.compacted(output, columns) == oracle.compacted(history.v1, columns)
    if phase == "write":
        assert (output / "data" / "_temporary").exists()

    # The dead run's lock is still there; a re-run that finds it stale takes it over.
    rerun = compact_feature_group(spark, target_for(history.group, history.source, output),
                                  settings(snapshot=True, stale_after_s=0.0))
    assert rerun.lock_taken_over_from is not None
    assert rerun.status == ("noop" if phase == "committed" else "compacted")
    assert oracle.compacted(output, columns) == expected == oracle.compacted(history.v2, columns)
    assert oracle.snapshot(output, columns) == oracle.snapshot(history.v2, columns)
    assert_no_garbage(output)
    assert not list((output / "data").glob("_temporary"))
