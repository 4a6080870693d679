"""Who decides where a job runs: spark-submit's master, deploy mode and shuffle partitions win over a
profile; a cluster job without `--env` stops; only a local launch gets loopback and this interpreter
for its Python workers. The spark-submit cases run the real spark-submit of the installed pyspark."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pyspark import SparkContext
from pyspark.sql import SparkSession

from featurestream.config.profile import SparkSpec
from featurestream.spark import _drop_what_submit_decides, configure_builder

ROOT = Path(__file__).resolve().parents[2]
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"

# What the job does with its session, through the one place sessions are configured.
PROBE = """
import json, os, sys
from pyspark.sql import SparkSession
from featurestream.config import load_profile
from featurestream.spark import configure_builder, start_session
spark = start_session(configure_builder(SparkSession.builder.appName("probe"), load_profile(sys.argv[1]).spark))
conf = spark.sparkContext.getConf()
seen = {"master": spark.sparkContext.master, "deploy_mode": conf.get("spark.submit.deployMode"),
        "shuffle_partitions": spark.conf.get("spark.sql.shuffle.partitions"),
        "jars": conf.get("spark.jars", None), "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP"),
        "rows": spark.sparkContext.parallelize(range(10), 2).map(lambda x: x + 1).sum()}
open(sys.argv[2], "w").write(json.dumps(seen))
spark.stop()
"""


def _submit_env() -> dict[str, str]:
    # No SPARK_LOCAL_IP: the job must not invent one under spark-submit.
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_LOCAL_IP", "PYSPARK_GATEWAY_PORT",
                                                            "PYSPARK_GATEWAY_SECRET", "SPARK_CONF_DIR")}
    return {**env, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}


def test_spark_submit_master_deploy_mode_and_partitions_win_over_the_profile(tmp_path: Path) -> None:
    profile = tmp_path / "laptop.yaml"
    profile.write_text(yaml.safe_dump({
        "kafka": {"bootstrap_servers": "127.0.0.1:1"}, "checkpoint_root": "cp", "dlq_path": "dlq",
        "spark": {"master": "local[2]", "shuffle_partitions": 4,
                  "conf": {"spark.submit.deployMode": "cluster", "spark.master": "local[3]"}}}))
    (tmp_path / "probe.py").write_text(PROBE)
    out = tmp_path / "seen.json"
    run = subprocess.run([str(SPARK_SUBMIT), "--master", "local[1]", "--deploy-mode", "client",
                          "--conf", "spark.sql.shuffle.partitions=7", "--conf", "spark.ui.enabled=false",
                          str(tmp_path / "probe.py"), str(profile), str(out)],
                         cwd=tmp_path, env=_submit_env(), capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert json.loads(out.read_text()) == {
        "master": "local[1]", "deploy_mode": "client", "shuffle_partitions": "7",
        # spark-submit's jars (none given) are the classpath: the checkout's are not put over them.
        "jars": None, "SPARK_LOCAL_IP": None, "rows": 55}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("job", ["stream_features.py", "build_training_set.py"])
def test_a_cluster_job_without_env_stops_with_one_line(tmp_path: Path, job: str) -> None:
    master = f"spark://127.0.0.1:{_closed_port()}"
    config = (["--feature-group", str(ROOT / "conf/feature_groups/card_activity.yaml")] if job.startswith("stream")
              else ["--config", str(ROOT / "conf/training_sets/card_fraud.yaml")])
    run = subprocess.run([str(SPARK_SUBMIT), "--master", master, str(ROOT / "jobs" / job), *config],
                         cwd=tmp_path, env=_submit_env(), capture_output=True, text=True, timeout=300, check=False)
    # spark-submit's PythonRunner passes the job's exit code on, and its stderr to stdout.
    assert run.returncode == 2, run.stdout[-2000:] + run.stderr[-2000:]
    lines = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("featurestream:")]
    assert lines == [f"featurestream: config error: command line: --env: required under spark-submit --master "
                     f"{master}: the default profile 'local' is the local stack's (give --env aws or a profile file)"]


def test_what_spark_submit_did_not_give_stays_the_profiles() -> None:
    settings = {"spark.sql.shuffle.partitions": "4", "spark.master": "local[3]", "spark.submit.deployMode": "cluster",
                "spark.sql.session.timeZone": "UTC"}
    _drop_what_submit_decides(settings, {"spark.master": "yarn", "spark.submit.deployMode": "client"})
    assert settings == {"spark.sql.shuffle.partitions": "4", "spark.sql.session.timeZone": "UTC"}
    _drop_what_submit_decides(settings, {"spark.master": "yarn", "spark.sql.shuffle.partitions": "64"})
    assert settings == {"spark.sql.session.timeZone": "UTC"}


@pytest.fixture
def launching(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """As a CLI run before its JVM exists: no gateway, no user settings for the workers or the address."""
    monkeypatch.setattr(SparkContext, "_jvm", None)
    for name in ("PYSPARK_GATEWAY_PORT", "PYSPARK_PYTHON", "SPARK_LOCAL_IP"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))
    return monkeypatch


def test_a_local_launch_gets_loopback_and_this_interpreter(launching: pytest.MonkeyPatch) -> None:
    options = configure_builder(SparkSession.Builder(), SparkSpec(master="local[2]"))._options
    assert (os.environ["PYSPARK_PYTHON"], os.environ["SPARK_LOCAL_IP"]) == (sys.executable, "127.0.0.1")
    assert (options["spark.master"], options["spark.driver.host"]) == ("local[2]", "127.0.0.1")


def test_the_users_python_for_the_workers_is_kept(launching: pytest.MonkeyPatch, tmp_path: Path) -> None:
    configure_builder(SparkSession.Builder(), SparkSpec(master="local[1]", conf={"spark.pyspark.python": "/opt/py"}))
    assert os.environ["PYSPARK_PYTHON"] == "/opt/py"
    launching.delenv("PYSPARK_PYTHON")
    (tmp_path / "spark-defaults.conf").write_text("spark.pyspark.python /srv/venv/bin/python\n")
    configure_builder(SparkSession.Builder(), SparkSpec(master="local[1]"))
    assert os.environ["PYSPARK_PYTHON"] == "/srv/venv/bin/python"
    launching.setenv("PYSPARK_PYTHON", "/usr/bin/python3.11")
    configure_builder(SparkSession.Builder(), SparkSpec(master="local[1]"))
    assert os.environ["PYSPARK_PYTHON"] == "/usr/bin/python3.11"


def test_a_cluster_master_gets_no_loopback(launching: pytest.MonkeyPatch) -> None:
    # E.g. a driver Deployment on Kubernetes (profile master k8s://...): executors must reach it.
    options = configure_builder(SparkSession.Builder(), SparkSpec(master="k8s://https://kubernetes.default.svc"))._options
    assert "SPARK_LOCAL_IP" not in os.environ and "PYSPARK_PYTHON" not in os.environ
    assert "spark.driver.host" not in options and "spark.driver.bindAddress" not in options
