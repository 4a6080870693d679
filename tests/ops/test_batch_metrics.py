"""Batch run metrics (textfile form), the OpenLineage parent settings and the batch alert rules' names.

The Pushgateway form is exercised against Debian's real pushgateway by tests/scheduling (the DAG runs
push there); the compaction CLI test reads the textfile of a real run back.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from featurestream.config.profile import BatchMetricsSpec, LineageSpec
from featurestream.ops.batch_metrics import BatchRun, publish, published_run, registry_of, textfile_path
from featurestream.ops.lineage import job_run, path_dataset
from featurestream.ops.parent_run import parent_run, scheduler_run

ROOT = Path(__file__).resolve().parents[2]


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float | None:
    wanted = tuple(sorted({"batch_job": "compact", "target": "local", **labels}.items()))
    return found.get((f"featurestream_batch_{name}", wanted))


def test_textfile_keeps_the_last_success_over_a_failed_run(tmp_path: Path) -> None:
    spec = BatchMetricsSpec(textfile_dir=str(tmp_path / "collector"))
    good = BatchRun("compact", "local", started=1000.0, input_rows=120, output_rows=100, input_files=7,
                    output_files=2, groups_done=2, succeeded=True, ended=1012.5)
    publish(good, spec)
    path = textfile_path(spec.textfile_dir or "", good)
    assert path == tmp_path / "collector" / "featurestream_compact_local.prom"
    first = samples(path)
    assert value(first, "duration_seconds") == 12.5
    assert (value(first, "input_rows"), value(first, "output_rows")) == (120, 100)
    assert (value(first, "input_files"), value(first, "output_files")) == (7, 2)
    assert (value(first, "groups", outcome="done"), value(first, "groups", outcome="failed")) == (2, 0)
    assert value(first, "last_success_timestamp_seconds") == 1012.5
    assert value(first, "last_run_success") == 1

    # A failed run: its own numbers (0 for what it never counted), the earlier success time kept.
    with pytest.raises(RuntimeError), published_run(spec, "compact", "local") as run:
        run.input_rows = 5
        raise RuntimeError("boom")
    second = samples(path)
    assert value(second, "last_success_timestamp_seconds") == 1012.5
    assert value(second, "last_run_success") == 0
    assert (value(second, "input_rows"), value(second, "output_rows")) == (5, 0)
    assert value(second, "groups", outcome="failed") == 1
    assert value(second, "last_run_timestamp_seconds") == pytest.approx(time.time(), abs=30)
    # Another job's file stands beside it, untouched.
    publish(BatchRun("training_set", "card_fraud", succeeded=True), spec)
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "featurestream_compact_local.prom", "featurestream_training_set_card_fraud.prom"]


def test_unreachable_gateway_is_a_warning_not_a_failure(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A port nothing listens on (bound, never accepted): connection refused at once.
    spec = BatchMetricsSpec(pushgateway="http://127.0.0.1:9", textfile_dir=str(tmp_path), timeout_s=2)
    publish(BatchRun("compact", "local", succeeded=True), spec)
    assert "batch_metrics_push_failed" in caplog.text
    assert (tmp_path / "featurestream_compact_local.prom").is_file()


def test_batch_metrics_spec_reads_the_standard_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEATURESTREAM_PUSHGATEWAY_URL", "http://gw:9091")
    monkeypatch.setenv("FEATURESTREAM_METRICS_TEXTFILE_DIR", "")
    spec = BatchMetricsSpec()
    assert (spec.pushgateway, spec.textfile_dir) == ("http://gw:9091", None)
    with pytest.raises(ValueError, match="not an http"):
        BatchMetricsSpec(pushgateway="gw:9091")


def test_batch_alert_rules_use_the_published_names() -> None:
    text = (ROOT / "docker" / "alerts-batch.yml").read_text()
    referenced = set(re.findall(r"\bfeaturestream_[a-z_]+\b", text))
    registry = registry_of(BatchRun("compact", "t", input_rows=1, output_rows=1, input_files=1, output_files=1,
                                    succeeded=True, ended=1.0), last_success=1.0)
    published = {s.name for family in registry.collect() for s in family.samples}
    assert referenced and referenced <= published, referenced - published


PARENT, ROOT_RUN = str(uuid.uuid4()), str(uuid.uuid4())


def test_parent_run_from_spark_properties_first_then_the_environment() -> None:
    env = {"OPENLINEAGE_PARENT_ID": f"airflow/dag.task/{PARENT}",
           "OPENLINEAGE_ROOT_PARENT_ID": f"airflow/dag/{ROOT_RUN}"}
    from_env = parent_run(env)
    assert from_env is not None
    assert from_env.describe() == {"namespace": "airflow", "job": "dag.task", "run_id": PARENT,
                                   "root": {"namespace": "airflow", "job": "dag", "run_id": ROOT_RUN}}
    other = str(uuid.uuid4())
    conf = {"spark.openlineage.parentJobNamespace": "ns", "spark.openlineage.parentJobName": "d.t",
            "spark.openlineage.parentRunId": other}
    from_conf = parent_run(env, conf)
    assert from_conf is not None and from_conf.parent.run_id == other and from_conf.root == from_conf.parent
    # A namespace may hold slashes; a run id that is not a UUID is no parent (a warning, never a failure).
    slashed = parent_run({"OPENLINEAGE_PARENT_ID": f"http://ol/ns/dag.task/{PARENT}"})
    assert slashed is not None and slashed.parent.namespace == "http://ol/ns"
    assert parent_run({"OPENLINEAGE_PARENT_ID": "airflow/dag.task/not-a-uuid"}) is None
    assert parent_run({}) is None


def test_scheduler_run_from_airflow_context_variables() -> None:
    assert scheduler_run({}) is None
    env = {"AIRFLOW_CTX_DAG_ID": "d", "AIRFLOW_CTX_TASK_ID": "t", "AIRFLOW_CTX_DAG_RUN_ID": "manual__x",
           "AIRFLOW_CTX_TRY_NUMBER": "1"}
    assert scheduler_run(env) == {"scheduler": "airflow", "dag_id": "d", "task_id": "t", "run_id": "manual__x",
                                  "try_number": "1"}


def test_lineage_events_of_a_child_run_carry_the_parent_facet(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    parent = parent_run({"OPENLINEAGE_PARENT_ID": f"airflow/dag.task/{PARENT}",
                         "OPENLINEAGE_ROOT_PARENT_ID": f"airflow/dag/{ROOT_RUN}"})
    spec = LineageSpec(transport="file", file=str(events))
    with job_run(spec, "compaction.local", [path_dataset("s3://b/in")], [path_dataset("s3://b/out")],
                 parent=parent) as run:
        assert run.reference()["parent"]["run_id"] == PARENT
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["eventType"] for e in lines] == ["START", "COMPLETE"]
    for event in lines:
        facet = event["run"]["facets"]["parent"]
        assert facet["run"]["runId"] == PARENT
        assert (facet["job"]["namespace"], facet["job"]["name"]) == ("airflow", "dag.task")
        assert facet["root"]["run"]["runId"] == ROOT_RUN
        assert (facet["root"]["job"]["namespace"], facet["root"]["job"]["name"]) == ("airflow", "dag")
        assert facet["_schemaURL"].endswith("ParentRunFacet.json#/$defs/ParentRunFacet")
