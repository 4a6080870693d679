"""`featurestream compact` and `jobs/compact_offline.py`: exit codes, one-line errors, JSON summary."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from featurestream.cli import main
from featurestream.compaction.lock import LockInfo
from featurestream.dev.feature_store import EmulatorProcess
from jobs import compact_offline
from tests.compaction import oracle
from tests.compaction.conftest import source_of
from tests.compaction.data import Group, batch, local_files

pytestmark = pytest.mark.integration


def write_config(path: Path, output: Path, source: str, name: str, extra: str = "") -> Path:
    path.write_text(
        f"output: {output}\n"
        f"feature_groups:\n  - {{name: {name}, path: '{source}', record_identifier: id, event_time: ts}}\n"
        "gc_grace: 0s\ntarget_file_size: 64KB\nspark: {master: 'local[2]', shuffle_partitions: 2}\n" + extra
    )
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any] | None, str]:
    code = main(["compact", *args])
    captured = capsys.readouterr()
    report = json.loads(captured.out) if captured.out.strip() else None
    return code, report, captured.err


def test_bad_configuration_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("output: /tmp/x\nfeature_groups: [{name: fg}]\nsnapshots: true\n")
    code, report, err = run_cli(capsys, "--config", str(bad))
    assert code == 2 and report is None
    # The unknown key comes with the closest allowed one.
    assert err.strip().splitlines() == [
        f"featurestream: config error: {bad}: snapshots: unknown key (did you mean 'snapshot'?)"]

    good = write_config(tmp_path / "good.yaml", tmp_path / "out", str(tmp_path / "in"), "fg")
    code, _, err = run_cli(capsys, "--config", str(good), "--feature-group-name", "other")
    assert code == 2 and "--feature-group-name: 'other' is not in feature_groups" in err
    # The old spelling still selects by name, with a warning (elsewhere --feature-group is a FILE).
    code, _, err = run_cli(capsys, "--config", str(good), "--feature-group", "other")
    assert code == 2 and "is deprecated" in err and "--feature-group-name: 'other' is not in" in err
    code, _, err = run_cli(capsys, "--config", str(good), "--since", "2026-11-21", "--until", "2026-11-20")
    assert code == 2 and "--until: must be later than --since" in err
    assert compact_offline.main(["--config", str(tmp_path / "missing.yaml")]) == 2


def test_cli_dry_run_then_run_then_noop_then_locked(
    spark: Any, emulator: EmulatorProcess, offline_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    group = Group.create(emulator, "s3://offline-bucket/cli")
    group.put(batch(range(40), hours=20, seed=9))
    group.flush()
    source = source_of(group, offline_root)
    output = tmp_path / "compacted"
    collector, events_file = tmp_path / "collector", tmp_path / "lineage.jsonl"
    config = write_config(tmp_path / "compaction.yaml", output, str(source), group.name,
                          f"metrics: {{textfile_dir: '{collector}'}}\n"
                          f"lineage: {{transport: file, file: '{events_file}', sagemaker: {{enabled: true}}}}\n")
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", emulator.url)  # SageMaker lineage in this suite's emulator
    # As Airflow's OpenLineage provider hands them to a task's process.
    parent, root = str(uuid.uuid4()), str(uuid.uuid4())
    monkeypatch.setenv("OPENLINEAGE_PARENT_ID", f"airflow/featurestream_compact_hourly.compact/{parent}")
    monkeypatch.setenv("OPENLINEAGE_ROOT_PARENT_ID", f"airflow/featurestream_compact_hourly/{root}")

    code, report, _ = run_cli(capsys, "--config", str(config), "--dry-run")
    assert code == 0 and report is not None
    [dry] = report["feature_groups"]
    assert dry["status"] == "dry-run" and dry["files_in"] == len(local_files(source.path))
    assert not output.exists()
    assert not collector.exists() and not events_file.exists()  # a dry run publishes nothing

    code, report, _ = run_cli(capsys, "--config", str(config), "--feature-group-name", group.name, "--no-progress")
    assert code == 0 and report is not None and report["status"] == "ok"
    [done] = report["feature_groups"]
    columns, expected = oracle.expected(local_files(source.path))
    assert done["status"] == "compacted" and done["rows_out"] == len(expected)
    assert report["totals"]["files_out"] == done["files_out"] > 0
    assert oracle.compacted(oracle.table_at(output / group.name), columns) == expected

    # The run's metrics, as node_exporter's textfile collector reads them, against the oracle.
    prom = collector / f"featurestream_compact_compaction_{group.name}.prom"
    found = {(s.name, s.labels.get("outcome")): s.value
             for family in text_string_to_metric_families(prom.read_text()) for s in family.samples}
    assert found[("featurestream_batch_output_rows", None)] == len(expected)
    assert found[("featurestream_batch_input_files", None)] == len(local_files(source.path))
    assert found[("featurestream_batch_output_files", None)] == done["files_out"]
    assert (found[("featurestream_batch_groups", "done")], found[("featurestream_batch_groups", "failed")]) == (1, 0)
    assert found[("featurestream_batch_last_run_success", None)] == 1
    assert abs(found[("featurestream_batch_last_success_timestamp_seconds", None)] - time.time()) < 300
    # Its OpenLineage run is the child of the scheduler's task run (and of the DAG run at the root).
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    facet = events[0]["run"]["facets"]["parent"]
    assert facet["run"]["runId"] == parent and facet["job"]["name"] == "featurestream_compact_hourly.compact"
    assert facet["root"]["run"]["runId"] == root
    assert events[1]["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == len(expected)
    # SageMaker lineage: the offline data ContributedTo the compaction, which Produced the output.
    recorded = done["sagemaker_lineage"]
    assert recorded["error"] is None and recorded["associations"] == 2
    assert set(recorded["artifacts"]) == {"feature_group", "compacted"}

    code, report, _ = run_cli(capsys, "--config", str(config))
    assert code == 0 and report is not None and report["feature_groups"][0]["status"] == "noop"
    again = report["feature_groups"][0]["sagemaker_lineage"]  # the re-run reuses every entity
    assert again["associations"] == 0 and again["artifacts"] == recorded["artifacts"]
    assert again["action_arn"] == recorded["action_arn"]

    # Another live run holds the group: exit 1, the summary says why, nothing changes.
    lock_file = output / group.name / "_compaction" / "lock.json"
    lock_file.write_bytes(LockInfo("other-run", "host", 1, time.time(), time.time()).encode())
    group.put(batch(range(40, 45), hours=20, seed=9))
    group.flush()
    code, report, _ = run_cli(capsys, "--config", str(config))
    assert code == 1 and report is not None and report["status"] == "failed"
    assert "held by run other-run" in report["feature_groups"][0]["error"]
    assert oracle.compacted(oracle.table_at(output / group.name), columns) == expected
    # The failed run (all groups: target `compaction`) keeps the noop run's success time.
    failed = {s.name: s.value for family in text_string_to_metric_families(
        (collector / "featurestream_compact_compaction.prom").read_text()) for s in family.samples}
    assert failed["featurestream_batch_last_run_success"] == 0
    assert failed["featurestream_batch_last_success_timestamp_seconds"] < failed[
        "featurestream_batch_last_run_timestamp_seconds"]
