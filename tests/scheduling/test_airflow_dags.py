"""The DAGs of dags/ run by Apache Airflow 3 (`airflow dags test`, SQLite, a private AIRFLOW_HOME),
starting the real jobs against real services: an offline store the Feature Store emulator wrote,
the stack's PostgreSQL for the labels, Debian's Pushgateway for the run metrics.

Checked afterwards: the compacted rows against DuckDB (only the hours before the run's logical
date), a rerun of the same logical date changes nothing, the training-set manifest (rows, the
scheduler's run, the lineage parent), the metrics the runs pushed; a broken config fails its task
once, without retries, the one-line error in the task log; the AWS DAGs parse and render their EMR
Serverless arguments; the batch alert rules pass `promtool check rules` and `promtool test rules`.

Slow-ish (Airflow's start-up per command): `make test-airflow` runs it (FEATURESTREAM_TEST_AIRFLOW=1),
`make test` skips it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from featurestream.dev.stack import debian_tools, manager
from tests.compaction import oracle
from tests.compaction.data import Group, batch, local_files
from tests.emulators import running_emulator
from tests.scheduling.airflow import ROOT, VENV, Airflow, installed
from tests.training import data, pg

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.environ.get("FEATURESTREAM_TEST_AIRFLOW") != "1",
                       reason="slow: run by `make test-airflow` (FEATURESTREAM_TEST_AIRFLOW=1)"),
]

# A logical date inside the test data's hours (2026-11-20 21:00 .. 2026-11-21 16:59 UTC): the hourly
# run compacts the closed hours before 12:00 on the 21st, not the later ones.
LOGICAL = "2026-11-21T12:15:00+00:00"
UNTIL = (21, 12)
SERVICES = ["postgres", "pushgateway"]


@pytest.fixture(scope="module")
def scheduling_stack() -> Iterator[dict[str, str]]:
    """PostgreSQL and the Pushgateway of the local stack (started if not running, stopped if we did)."""
    if not installed():
        pytest.fail(f"featurestream: no Airflow venv at {VENV} (`make airflow-venv` builds it)", pytrace=False)
    before = {s.name for s in manager.status(SERVICES) if s.healthy}
    manager.up(SERVICES)
    env = manager.env()  # the JDBC URL and password file, FEATURESTREAM_PUSHGATEWAY_URL
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    started = [name for name in SERVICES if name not in before]
    if started:
        manager.down(started)


@pytest.fixture(scope="module")
def airflow(scheduling_stack: dict[str, str]) -> Iterator[Airflow]:
    home = ROOT / "build" / "airflow-home" / f"run-{os.getpid()}"
    shutil.rmtree(home, ignore_errors=True)
    extra = {
        **scheduling_stack,
        "FEATURESTREAM_HOME": str(ROOT),
        "FEATURESTREAM_BIN": str(ROOT / ".venv" / "bin" / "featurestream"),
        # Retries as in production, but a second apart instead of ten minutes.
        "FEATURESTREAM_DAG_RETRIES": "2",
        "FEATURESTREAM_DAG_RETRY_DELAY_S": "1",
        # Airflow's OpenLineage provider on, writing the tasks' events to a file.
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "file", "log_file_path": str(home / "openlineage.jsonl"),
                                                       "append": True}),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "airflow-test",
    }
    yield Airflow(home, extra)
    shutil.rmtree(home, ignore_errors=True)


def pushed(gateway: str, batch_job: str, target: str) -> dict[tuple[str, str | None], float]:
    with urllib.request.urlopen(f"{gateway}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("batch_job") == batch_job and s.labels.get("target") == target:
                found[(s.name, s.labels.get("outcome"))] = s.value
    return found


def before_until(files: list[Path]) -> list[Path]:
    """The source files of event hours before the run's `--until` (the Glue layout's day=/hour=)."""
    kept = []
    for path in files:
        day = int(re.search(r"day=(\d+)", str(path)).group(1))  # type: ignore[union-attr]
        hour = int(re.search(r"hour=(\d+)", str(path)).group(1))  # type: ignore[union-attr]
        if (day, hour) < UNTIL:
            kept.append(path)
    return kept


def summary_of(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n{result.stdout[-6000:]}\n{result.stderr[-4000:]}"


def test_local_compaction_dag_runs_reruns_and_pushes_its_metrics(airflow: Airflow, tmp_path: Path) -> None:
    with running_emulator(tmp_path / "emulator") as emulator:
        group = Group.create(emulator, "s3://offline-bucket/airflow")
        group.put(batch(range(60), hours=20, seed=5))
        group.flush()
        source = Path(emulator.options["offline_local_dir"]) / group.resolved_uri.removeprefix("s3://")
    output = tmp_path / "compacted"
    config = tmp_path / "compaction.yaml"
    config.write_text(yaml.safe_dump({
        "output": str(output), "gc_grace": "0s", "target_file_size": "64KB",
        "feature_groups": [{"name": group.name, "path": str(source), "record_identifier": "id", "event_time": "ts"}],
        "spark": {"master": "local[2]", "shuffle_partitions": 2},
        "lineage": {"transport": "file", "file": str(tmp_path / "lineage.jsonl")},
    }))
    dag = "featurestream_compact_hourly"
    first = airflow.dags_test(dag, LOGICAL, {"config": str(config)})
    assert first.returncode == 0, summary_of(first)
    columns, expected = oracle.expected(before_until(local_files(source)))
    assert 0 < len(expected) < len(oracle.expected(local_files(source))[1])
    assert oracle.compacted(oracle.table_at(output / group.name), columns) == expected

    # The run pushed its metrics to the Pushgateway; the numbers are the oracle's.
    metrics = pushed(airflow.env["FEATURESTREAM_PUSHGATEWAY_URL"], "compact", "compaction")
    assert metrics[("featurestream_batch_output_rows", None)] == len(expected)
    assert metrics[("featurestream_batch_input_files", None)] == len(before_until(local_files(source)))
    assert metrics[("featurestream_batch_groups", "done")] == 1
    assert metrics[("featurestream_batch_last_run_success", None)] == 1
    first_success = metrics[("featurestream_batch_last_success_timestamp_seconds", None)]

    # The job's OpenLineage run is the child of the Airflow task's run.
    events = [json.loads(line) for line in (tmp_path / "lineage.jsonl").read_text().splitlines()]
    parent = events[0]["run"]["facets"]["parent"]
    assert (parent["job"]["namespace"], parent["job"]["name"]) == ("airflow-test", f"{dag}.compact")
    assert (parent["root"]["job"]["namespace"], parent["root"]["job"]["name"]) == ("airflow-test", dag)
    # ... and that run is the one Airflow's OpenLineage provider reported for the task.
    task_runs = {e["run"]["runId"] for e in airflow.openlineage_events() if e["job"]["name"] == f"{dag}.compact"}
    assert parent["run"]["runId"] in task_runs, task_runs

    # A rerun of the same logical date: nothing new, the same rows.
    again = airflow.dags_test(dag, LOGICAL, {"config": str(config)})
    assert again.returncode == 0, summary_of(again)
    assert '"status": "noop"' in again.stdout + again.stderr + airflow.task_log(dag, "compact")
    assert oracle.compacted(oracle.table_at(output / group.name), columns) == expected
    later = pushed(airflow.env["FEATURESTREAM_PUSHGATEWAY_URL"], "compact", "compaction")
    assert later[("featurestream_batch_last_success_timestamp_seconds", None)] >= first_success


def test_broken_config_fails_once_without_retries(airflow: Airflow, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("output: /tmp/x\nfeature_groups: [{name: fg}]\nsnapshots: true\n")
    dag = "featurestream_compact_daily"
    result = airflow.dags_test(dag, LOGICAL, {"config": str(bad)})
    assert result.returncode != 0, summary_of(result)
    tries = airflow.task_instances(dag)
    assert [(t["task_id"], t["state"], t["try_number"]) for t in tries] == [("compact", "failed", 1)], tries
    assert tries[0]["max_tries"] == 2  # it had retries left, and did not use them
    # `dags test` runs the task in its own process and prints the task log there.
    log = result.stdout + result.stderr + airflow.task_log(dag, "compact")
    line = f"featurestream: config error: {bad}: snapshots: unknown key (did you mean 'snapshot'?)"
    assert line in log, log[-3000:]
    assert "AirflowFailException: featurestream compact exited 2 (configuration error, not retried)" in log


def test_local_training_set_dag_writes_the_set_and_its_manifest(airflow: Airflow, tmp_path: Path) -> None:
    scenario = data.scenario(labels=200)
    table = f"fs_airflow_labels_{os.getpid()}"
    pg.load_frame(table, pg.LABELS_DDL, scenario.labels)
    try:
        paths = {name: data.write_compacted(frame, tmp_path / "features" / name)
                 for name, frame in scenario.groups.items()}
        config = tmp_path / "fraud_airflow.yaml"
        config.write_text(yaml.safe_dump({
            "labels": {"jdbc": {"url": "${FEATURESTREAM_JDBC_URL}",
                                "password_file": "${FEATURESTREAM_JDBC_PASSWORD_FILE}"},
                       "table": table, "timestamp_column": "label_time", "label_columns": ["is_fraud"]},
            "feature_groups": [{"name": "card_activity", "path": paths["card_activity"],
                                "keys": {"card_id": "card_id"}, "date_partition_column": "event_date"}],
            "output": {"path": "${FEATURESTREAM_TRAINING_URI}"},
        }))
        profile = tmp_path / "profile.yaml"
        profile.write_text(yaml.safe_dump({
            "kind": "local", "kafka": {"bootstrap_servers": "127.0.0.1:1"}, "checkpoint_root": str(tmp_path / "ck"),
            "dlq_path": str(tmp_path / "dlq"), "spark": {"master": "local[2]", "shuffle_partitions": 2},
            "lineage": {"transport": "file", "file": str(tmp_path / "lineage.jsonl")}}))
        dag = "featurestream_training_set"
        result = airflow.dags_test(dag, LOGICAL, {"config": str(config), "profile": str(profile),
                                                  "output_root": str(tmp_path / "sets")})
        assert result.returncode == 0, summary_of(result)
    finally:
        pg.psql(f"DROP TABLE IF EXISTS {table}")
    manifest = json.loads((tmp_path / "sets" / "ds=2026-11-21" / "manifest.json").read_text())
    rows = sum(split["rows"] for split in manifest["output"]["splits"].values())
    assert rows == len(scenario.labels)
    run_id = next(t["run_id"] for t in airflow.task_instances(dag))
    assert manifest["scheduler"]["run_id"] == run_id and manifest["scheduler"]["dag_id"] == dag
    assert manifest["lineage"]["parent"]["job"] == f"{dag}.build"
    metrics = pushed(airflow.env["FEATURESTREAM_PUSHGATEWAY_URL"], "training_set", "fraud_airflow")
    assert metrics[("featurestream_batch_output_rows", None)] == len(scenario.labels)
    assert metrics[("featurestream_batch_last_run_success", None)] == 1


RENDER = """
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
# As the DAG processor parses the dags-folder bundle: its folder on sys.path (featurestream_batch).
bag = BundleDagBag(sys.argv[1], bundle_path=Path(sys.argv[1]), bundle_name="dags-folder")
dags = {d: {t.task_id: {"type": type(t).__name__, "job_driver": getattr(t, "job_driver", None),
                        "application_id": getattr(t, "application_id", None),
                        "retries": t.retries, "inject": getattr(t, "openlineage_inject_parent_job_info", None)}
            for t in dag.tasks} for d, dag in bag.dags.items()}
# The contract as exception types: AirflowFailException is Airflow's "no retry".
from airflow.sdk.exceptions import AirflowFailException
from featurestream_batch.aws import _EXIT_CODE
from featurestream_batch.exit_codes import raise_for_exit
outcomes = {}
for code in (0, 1, 2, 3, 137):
    try:
        raise_for_exit(code, "featurestream compact", "featurestream: x")
        outcomes[code] = "ok"
    except AirflowFailException:
        outcomes[code] = "fail, no retry"
    except Exception:
        outcomes[code] = "fail, retried"
found = _EXIT_CODE.search("Job failed, please check complete logs in configured logging destination. ExitCode: 2.")
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "dags": dags, "outcomes": outcomes,
                  "emr_exit_code": found.group(1) if found else None}))
"""


def test_aws_dags_parse_and_carry_the_emr_serverless_arguments(airflow: Airflow) -> None:
    env_before = dict(airflow.env)
    airflow.env.update({"FEATURESTREAM_EMR_APPLICATION_ID": "00fsapp", "FEATURESTREAM_RELEASE_S3_URI": "s3://rel/0.1.0",
                        "FEATURESTREAM_CONF_S3_URI": "s3://rel/conf", "FEATURESTREAM_COMPACTED_URI": "s3://out/c",
                        "FEATURESTREAM_DRIVER_ENV": "FEATURESTREAM_COMPACTED_URI"})
    try:
        done = airflow.python(RENDER, str(ROOT / "dags"))
    finally:
        airflow.env = env_before
    assert done.returncode == 0, summary_of(done)
    bag = json.loads(done.stdout.strip().splitlines()[-1])
    assert bag["errors"] == {}
    assert bag["outcomes"] == {"0": "ok", "1": "fail, retried", "2": "fail, no retry", "3": "fail, no retry",
                               "137": "fail, retried"}
    assert bag["emr_exit_code"] == "2"
    assert set(bag["dags"]) == {"featurestream_compact_hourly", "featurestream_compact_daily",
                                "featurestream_training_set", "featurestream_aws_compact_hourly",
                                "featurestream_aws_compact_daily", "featurestream_aws_training_set",
                                "featurestream_backfill", "featurestream_aws_backfill",
                                "featurestream_consistency", "featurestream_aws_consistency"}
    task = bag["dags"]["featurestream_aws_compact_hourly"]["compact"]
    assert task["type"] == "FeaturestreamEmrServerlessOperator" and task["application_id"] == "00fsapp"
    assert task["inject"] is True and task["retries"] == 2
    submit = task["job_driver"]["sparkSubmit"]
    assert submit["entryPoint"] == "s3://rel/0.1.0/jobs/compact_offline.py"
    assert submit["entryPointArguments"][:2] == ["--config", "aws.yaml"]
    assert "--until" in submit["entryPointArguments"] and "--since" in submit["entryPointArguments"]
    parameters = submit["sparkSubmitParameters"]
    assert "--py-files s3://rel/0.1.0/featurestream-0.1.0-pyfiles.zip" in parameters
    assert "--packages org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:" in parameters
    assert "--files s3://rel/conf/compaction/aws.yaml" in parameters
    assert "spark.emr-serverless.driverEnv.FEATURESTREAM_COMPACTED_URI=s3://out/c" in parameters
    training = bag["dags"]["featurestream_aws_training_set"]["build"]["job_driver"]["sparkSubmit"]
    assert "--jars s3://rel/0.1.0/jars/featurestream-tiles.jar" in training["sparkSubmitParameters"]
    assert "--packages org.postgresql:postgresql:" in training["sparkSubmitParameters"]
    backfill = bag["dags"]["featurestream_aws_backfill"]["backfill"]["job_driver"]["sparkSubmit"]
    assert backfill["entryPoint"] == "s3://rel/0.1.0/jobs/backfill_features.py"
    assert backfill["entryPointArguments"][:4] == ["--feature-group", "card_activity.yaml", "--env", "aws"]
    assert "--files s3://rel/conf/feature_groups/card_activity.yaml" in backfill["sparkSubmitParameters"]
    assert bag["dags"]["featurestream_backfill"]["backfill"]["type"] == "FeaturestreamOperator"
    check = bag["dags"]["featurestream_aws_consistency"]["check"]["job_driver"]["sparkSubmit"]
    assert check["entryPoint"] == "s3://rel/0.1.0/jobs/consistency.py"
    assert check["entryPointArguments"][:4] == ["--feature-group", "card_activity.yaml", "--env", "aws"]
    assert "--jars s3://rel/0.1.0/jars/featurestream-tiles.jar" in check["sparkSubmitParameters"]
    assert bag["dags"]["featurestream_consistency"]["check"]["type"] == "FeaturestreamOperator"


def test_batch_alert_rules_pass_promtool(tmp_path: Path) -> None:
    promtool = debian_tools.program("promtool", "prometheus", tmp_path / "prometheus-unpack.log")
    checked = subprocess.run([str(promtool), "check", "rules", str(ROOT / "docker" / "alerts-batch.yml")],
                             capture_output=True, text=True, timeout=120, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run([str(promtool), "test", "rules", "alerts_test.yml"], cwd=Path(__file__).parent,
                            capture_output=True, text=True, timeout=120, check=False)
    assert tested.returncode == 0, tested.stdout + tested.stderr
