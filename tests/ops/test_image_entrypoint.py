"""docker/entrypoint.sh: the job image as Spark-on-Kubernetes driver and executor pods, and as the CLI.

No Kubernetes here: the driver branch runs for real (spark-submit in client mode, as in a driver
pod, on a local master), the executor branch is checked against the options and environment names
that Spark's own Kubernetes jar parses.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pyspark

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
SPARK_HOME = Path(pyspark.__file__).parent
KUBERNETES_JAR = next((SPARK_HOME / "jars").glob("spark-kubernetes_*.jar"))
EXECUTOR_ENV = {
    "SPARK_DRIVER_URL": "spark://CoarseGrainedScheduler@10.0.0.5:7078",
    "SPARK_EXECUTOR_ID": "3",
    "SPARK_EXECUTOR_CORES": "2",
    "SPARK_APPLICATION_ID": "spark-0a1b2c",
    "SPARK_EXECUTOR_POD_IP": "10.0.0.9",
    "SPARK_EXECUTOR_MEMORY": "3g",
    "SPARK_EXECUTOR_POD_NAME": "stream-card-activity-exec-3",
    "SPARK_RESOURCE_PROFILE_ID": "0",
    "SPARK_JAVA_OPT_0": "-Dspark.driver.port=7078",
    "SPARK_JAVA_OPT_1": "-Dspark.app.name=stream card activity",
}


def _env(**extra: str) -> dict[str, str]:
    # The venv's python and featurestream first on PATH, as /opt/venv/bin is in the image.
    base = {k: v for k, v in os.environ.items() if not k.startswith("SPARK_JAVA_OPT_")}
    return {**base, "PATH": f"{Path(sys.executable).parent}:{base['PATH']}", **extra}


def _class_strings(jar: Path, prefix: str) -> set[str]:
    """The option-like constants of the classes under `prefix` in `jar`."""
    found: set[str] = set()
    with zipfile.ZipFile(jar) as archive:
        for name in archive.namelist():
            if name.startswith(prefix) and name.endswith(".class"):
                found.update(m.decode() for m in re.findall(rb"--[A-Za-z][A-Za-z-]+", archive.read(name)))
    return found


def test_other_arguments_run_the_cli() -> None:
    run = subprocess.run([str(ENTRYPOINT), "--help"], env=_env(), capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "featurestream" in run.stdout and "stream" in run.stdout


def test_driver_pod_runs_spark_submit_in_client_mode_bound_to_the_pod(tmp_path: Path) -> None:
    # What Spark gives a driver pod: its properties file and PythonRunner with the application.
    properties = tmp_path / "spark.properties"
    properties.write_text("spark.master=local[1]\nspark.app.name=entrypoint-driver\nspark.ui.enabled=false\n")
    app = tmp_path / "app.py"
    app.write_text(
        "import json, sys\n"
        "from pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.getOrCreate()\n"
        "conf = spark.sparkContext.getConf()\n"
        "keys = ['spark.driver.bindAddress', 'spark.submit.deployMode', 'spark.executorEnv.SPARK_DRIVER_POD_IP']\n"
        "seen = {k: conf.get(k) for k in keys}\n"
        "seen['rows'] = spark.range(5).count()\n"
        "open(sys.argv[1], 'w').write(json.dumps(seen))\n"
        "spark.stop()\n")
    out = tmp_path / "seen.json"
    env = _env(SPARK_DRIVER_BIND_ADDRESS="127.0.0.1", SPARK_LOCAL_IP="127.0.0.1",
               PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    env.pop("SPARK_HOME", None)  # found from the installed pyspark, as in the image
    run = subprocess.run([str(ENTRYPOINT), "driver", "--properties-file", str(properties),
                          "--class", "org.apache.spark.deploy.PythonRunner", str(app), str(out)],
                         env=env, capture_output=True, text=True, check=False, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(out.read_text()) == {
        "spark.driver.bindAddress": "127.0.0.1", "spark.submit.deployMode": "client",
        "spark.executorEnv.SPARK_DRIVER_POD_IP": "127.0.0.1", "rows": 5}


def test_executor_pod_command_matches_what_spark_parses() -> None:
    run = subprocess.run([str(ENTRYPOINT), "executor"], env=_env(FEATURESTREAM_ENTRYPOINT_PRINT="1",
                                                                 SPARK_HOME=str(SPARK_HOME), **EXECUTOR_ENV),
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    argv = run.stdout.splitlines()
    main = "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend"
    assert argv[:5] == ["java", "-Dspark.driver.port=7078", "-Dspark.app.name=stream card activity",
                        "-Xms3g", "-Xmx3g"]
    assert argv[5:8] == ["-cp", f"{SPARK_HOME}/jars/*", main]
    options = dict(zip(argv[8::2], argv[9::2], strict=True))
    assert options == {
        "--driver-url": EXECUTOR_ENV["SPARK_DRIVER_URL"], "--executor-id": "3", "--cores": "2",
        "--app-id": "spark-0a1b2c", "--hostname": "10.0.0.9", "--resourceProfileId": "0",
        "--podName": "stream-card-activity-exec-3"}
    # Every option is one the executor backend of this Spark version parses.
    assert set(options) <= _class_strings(KUBERNETES_JAR, main.replace(".", "/"))
    # And every variable read is one Spark's Kubernetes support sets on executor pods.
    with zipfile.ZipFile(KUBERNETES_JAR) as archive:
        constants = archive.read("org/apache/spark/deploy/k8s/Constants$.class")
    for name in EXECUTOR_ENV:
        assert re.sub(rb"\d+$", b"", name.encode()) in constants, name


def test_executor_without_the_pod_environment_fails_with_its_name() -> None:
    env = _env(SPARK_HOME=str(SPARK_HOME), **{k: v for k, v in EXECUTOR_ENV.items() if k != "SPARK_DRIVER_URL"})
    env.pop("SPARK_DRIVER_URL", None)
    run = subprocess.run([str(ENTRYPOINT), "executor"], env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 2
    assert "SPARK_DRIVER_URL is not set" in run.stderr
