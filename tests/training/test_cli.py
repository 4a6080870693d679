"""The entry points end to end, in their own processes: `spark-submit jobs/build_training_set.py`
(exit 0, progress display, manifest, the password nowhere in output), `featurestream
training-set` failing with exit 1 on a missing feature path, and its SageMaker lineage in the
stack's emulator (recorded twice: no duplicates)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from featurestream.config.training_set import load_training_set
from featurestream.connectors.provisioning import DEFINITION_TAG
from featurestream.io.jars import spark_jars
from featurestream.ops.sagemaker_lineage import SageMakerLineage, client_for
from featurestream.training.sagemaker_lineage import record
from tests.training import pg
from tests.training.conftest import Loaded

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def _env() -> dict[str, str]:
    return {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
            "SPARK_LOCAL_IP": "127.0.0.1"}


def _config(loaded: Loaded, tmp_path: Path, **overrides: Any) -> Path:
    spec = loaded.spec(**overrides)
    spec.pop("name")
    # As a user writes it: the URL and the secret file come from the environment.
    spec["labels"]["jdbc"] = {"url": "${FEATURESTREAM_JDBC_URL}",
                              "password_file": "${FEATURESTREAM_JDBC_PASSWORD_FILE}"}
    path = tmp_path / "fraud_cli.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def _profile(tmp_path: Path, *, sagemaker: bool = False) -> tuple[Path, Path]:
    """A local profile whose OpenLineage events go to a file of this test."""
    events = tmp_path / "lineage" / "events.jsonl"
    profile = tmp_path / "env.yaml"
    profile.write_text(yaml.safe_dump({
        "kind": "local", "kafka": {"bootstrap_servers": "127.0.0.1:1"},
        "checkpoint_root": str(tmp_path / "ck"), "dlq_path": str(tmp_path / "dlq"),
        "spark": {"master": "local[2]", "shuffle_partitions": 2},
        "lineage": {"transport": "file", "file": str(events), "sagemaker": {"enabled": sagemaker}},
    }))
    return profile, events


def test_spark_submit_builds_with_progress_lineage_and_keeps_the_secret(loaded: Loaded, tmp_path: Path) -> None:
    out = tmp_path / "set"
    config = _config(loaded, tmp_path, output={"path": str(out), "split": {"validation_fraction": 0.25}})
    profile, events_file = _profile(tmp_path)
    # As on a cluster, the JVM connectors are given to spark-submit: the JVM starts before the job
    # runs, so spark.jars set from inside it reach the executors but not the driver, which opens
    # the JDBC connection (without them: ClassNotFoundException: org.postgresql.Driver, exit 1).
    # Started as a scheduler starts it: the OpenLineage parent as Spark properties (what Airflow's
    # provider injects into spark-submit), the scheduler's run in AIRFLOW_CTX_* variables.
    parent, root = str(uuid.uuid4()), str(uuid.uuid4())
    lineage_conf = {"parentJobNamespace": "airflow", "parentJobName": "featurestream_training_set.build",
                    "parentRunId": parent, "rootParentJobNamespace": "airflow",
                    "rootParentJobName": "featurestream_training_set", "rootParentRunId": root}
    scheduler = {"AIRFLOW_CTX_DAG_ID": "featurestream_training_set", "AIRFLOW_CTX_TASK_ID": "build",
                 "AIRFLOW_CTX_DAG_RUN_ID": "scheduled__2026-12-06T04:00:00+00:00", "AIRFLOW_CTX_TRY_NUMBER": "1"}
    done = subprocess.run(
        [str(VENV_BIN / "spark-submit"), "--master", "local[2]", "--jars", ",".join(spark_jars()),
         *[arg for key, value in lineage_conf.items() for arg in ("--conf", f"spark.openlineage.{key}={value}")],
         "jobs/build_training_set.py", "--config", str(config), "--env", str(profile), "--progress"],
        cwd=ROOT, env={**_env(), **scheduler}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["rows"]["train"] + result["rows"]["validation"] == len(loaded.scenario.labels)
    # spark-submit's PythonRunner merges the driver's stderr into its stdout: the progress lines
    # (written to stderr) arrive on stdout, before the result line.
    shown = done.stdout + done.stderr
    for phase in ("reading labels", "joining as of label time", "describing the labels"):
        assert re.search(rf"{phase}\s+\[[#.]+\] ", shown) and re.search(rf"{phase}\s+done in \d", shown)
    manifest_text = Path(result["manifest"]).read_text()
    manifest = json.loads(manifest_text)
    assert manifest["config_file"] == str(config)
    assert 0.2 < result["rows"]["validation"] / len(loaded.scenario.labels) < 0.3

    # The manifest links to the run's OpenLineage events: START and COMPLETE, same run id.
    link = manifest["lineage"]
    assert link["transport"] == "file" and link["location"] == str(events_file.resolve())
    assert link["job"] == "training_set.fraud_cli" and link["run_id"] == result["lineage_run_id"]
    events_text = events_file.read_text()
    events = [json.loads(line) for line in events_text.splitlines() if line.strip()]
    assert [e["eventType"] for e in events if e["run"]["runId"] == link["run_id"]] == ["START", "COMPLETE"]
    start = events[0]
    # The run is the child of the scheduler's task run; the manifest names both.
    facet = start["run"]["facets"]["parent"]
    assert facet["run"]["runId"] == parent and facet["job"]["name"] == "featurestream_training_set.build"
    assert facet["root"]["run"]["runId"] == root
    assert link["parent"]["run_id"] == parent and link["parent"]["root"]["run_id"] == root
    assert manifest["scheduler"] == {"scheduler": "airflow", "dag_id": "featurestream_training_set",
                                     "task_id": "build", "run_id": "scheduled__2026-12-06T04:00:00+00:00",
                                     "try_number": "1"}
    assert start["job"] == {"namespace": link["namespace"], "name": link["job"], "facets": start["job"]["facets"]}
    port = os.environ["FEATURESTREAM_JDBC_URL"].split("//", 1)[1].split("/", 1)[0]
    inputs = {(d["namespace"], d["name"]) for d in start["inputs"]}
    assert (f"postgres://{port}", f"featurestream.public.{loaded.table}") in inputs
    assert {("file", str(Path(p).resolve())) for p in loaded.paths.values()} <= inputs
    assert [(d["namespace"], d["name"]) for d in start["outputs"]] == [("file", str(out.resolve()))]

    secret = pg.password()
    assert secret not in done.stdout + done.stderr + manifest_text + events_text


def test_missing_feature_path_exits_1(loaded: Loaded, tmp_path: Path) -> None:
    groups = loaded.spec()["feature_groups"]
    groups[0] = {**groups[0], "path": str(tmp_path / "no-such-group")}
    config = _config(loaded, tmp_path, feature_groups=groups, output={"path": str(tmp_path / "set")})
    done = subprocess.run([str(VENV_BIN / "featurestream"), "training-set", "--config", str(config), "--no-progress"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr[-3000:]
    assert f"featurestream: cannot read feature Parquet at {tmp_path / 'no-such-group'}" in done.stderr


def _feature_groups_in_emulator(loaded: Loaded) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Two of the three inputs name a SageMaker group (created in the stack's emulator, with a
    definition fingerprint tag); the third is known by its path only."""
    client = boto3.client("sagemaker", region_name=os.environ.get("AWS_REGION", "us-east-1"))
    groups, fingerprints = loaded.spec()["feature_groups"], {}
    for group in groups[:2]:
        name = f"{group['name'].replace('_', '-')}-{uuid.uuid4().hex[:8]}"
        fingerprints[name] = f"sha256:{uuid.uuid4().hex[:16]}"
        client.create_feature_group(
            FeatureGroupName=name, RecordIdentifierFeatureName="card_id", EventTimeFeatureName="event_time",
            FeatureDefinitions=[{"FeatureName": "card_id", "FeatureType": "String"},
                                {"FeatureName": "event_time", "FeatureType": "String"}],
            OnlineStoreConfig={"EnableOnlineStore": True},
            Tags=[{"Key": DEFINITION_TAG, "Value": fingerprints[name]}])
        group["feature_group"] = name
    return groups, fingerprints


def test_sagemaker_lineage_links_the_set_to_its_sources_once_and_no_progress_bars(
        spark: Any, loaded: Loaded, tmp_path: Path) -> None:
    """A build leaves in the emulator a training-set artifact reachable through associations from
    the feature groups' artifacts (ARN, fingerprint) and the RDS source's (URL without user or
    password); recording the same build again (what a re-run does after its build) reuses every
    entity. With --no-progress stderr holds JSON log lines only: no `[Stage N:>   (0 + 2) / 4]` bars."""
    started = time.time()
    groups, fingerprints = _feature_groups_in_emulator(loaded)
    config = _config(loaded, tmp_path, feature_groups=groups, output={"path": str(tmp_path / "set")})
    profile, _ = _profile(tmp_path, sagemaker=True)
    done = subprocess.run([str(VENV_BIN / "featurestream"), "training-set", "--config", str(config),
                           "--env", str(profile), "--no-progress"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads(done.stdout.strip().splitlines()[-1])
    assert "[Stage" not in done.stderr
    # Spark's own warnings go to stderr as log4j lines; every line we write there is a JSON object.
    ours = [line for line in done.stderr.splitlines() if line.startswith("{")]
    assert ours and all(isinstance(json.loads(line), dict) for line in ours)

    first = run["sagemaker_lineage"]
    assert first["error"] is None and first["associations"] == 5  # 4 inputs -> action -> training set
    manifest = json.loads(Path(run["manifest"]).read_text())
    training_set = manifest["sagemaker_lineage"]["training_set_artifact_arn"]
    assert training_set == first["artifacts"]["training_set"]
    assert manifest["lineage"]["run_id"] == run["lineage_run_id"]  # and the OpenLineage run
    # The re-run's lineage step, in process: the same config and output, found, not created again.
    spec = load_training_set(str(config))
    again = record(spark, SageMakerLineage(client_for(os.environ.get("AWS_REGION", "us-east-1"))), spec,
                   run["path"], run["manifest"], manifest).describe()
    assert again["associations"] == 0 and again["artifacts"] == first["artifacts"]
    assert again["action_arn"] == first["action_arn"] and again["error"] is None

    # Walk the graph backwards from the training set, as Studio does.
    sm = boto3.client("sagemaker", region_name=os.environ.get("AWS_REGION", "us-east-1"))
    produced_by = sm.list_associations(DestinationArn=training_set)["AssociationSummaries"]
    assert [(e["SourceArn"], e["AssociationType"]) for e in produced_by] == [(first["action_arn"], "Produced")]
    into = sm.list_associations(DestinationArn=first["action_arn"], MaxResults=100)["AssociationSummaries"]
    assert {e["AssociationType"] for e in into} == {"ContributedTo"} and len(into) == 4
    sources = {e["SourceArn"]: sm.describe_artifact(ArtifactArn=e["SourceArn"]) for e in into}
    by_type: dict[str, list[dict[str, Any]]] = {}
    for artifact in sources.values():
        by_type.setdefault(artifact["ArtifactType"], []).append(artifact)
    groups_found = {a["Source"]["SourceUri"].rsplit("/", 1)[1]: a["Source"]["SourceTypes"][0]["Value"]
                    for a in by_type["FeatureGroup"]}
    assert groups_found == fingerprints
    (rds,) = by_type["DataSource"]
    port = os.environ["FEATURESTREAM_JDBC_URL"].split("//", 1)[1].split("/", 1)[0]
    assert rds["Source"]["SourceUri"] == f"postgres://{port}/featurestream.public.{loaded.table}"
    (path_only,) = by_type["DataSet"]
    assert path_only["Source"]["SourceUri"] == "file://" + str(Path(loaded.paths["merchant_risk"]).resolve())
    # No duplicates: one artifact per source URI, one action for the set.
    for arn in [*sources, training_set]:
        uri = sm.describe_artifact(ArtifactArn=arn)["Source"]["SourceUri"]
        assert len(sm.list_artifacts(SourceUri=uri)["ArtifactSummaries"]) == 1, uri
    action_uri = sm.describe_action(ActionName=first["action_arn"])["Source"]["SourceUri"]
    # (the stack's emulator keeps earlier sessions' actions for this set name: count this test's)
    assert len(sm.list_actions(SourceUri=action_uri, CreatedAfter=started)["ActionSummaries"]) == 1
    secret = pg.password()
    listed = json.dumps(sm.list_artifacts(MaxResults=100), default=str)
    assert secret not in listed and "user=" not in listed
