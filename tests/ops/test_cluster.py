"""The streaming job and the compaction job on a real Spark standalone cluster (a master and two
workers from the pyspark distribution, loopback only), submitted the way a cluster runs them.
The streaming job is submitted with the standalone command of docs/operations.md, taken from the
doc and run as written (`--packages` from packages.txt, `--jars`, `--py-files`, `--env aws`),
with only its documented variables set. Executors are separate JVMs with their own Python
workers; results are checked against the independent oracles.

Slow (a cluster start and two submissions): `make test-cluster` runs it; `make test` skips it
unless FEATURESTREAM_TEST_CLUSTER=1.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml

from featurestream.config import load_feature_group, load_profile
from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.connectors.provisioning import ensure_feature_group
from featurestream.dev.feature_store import EmulatorProcess
from featurestream.dev.generator import (
    GeneratorSettings,
    encode,
    ensure_topic,
    generate_events,
    produce_kafka,
    recent_start,
)
from featurestream.io.jars import spark_jars
from featurestream.ops import package
from tests.compaction import oracle
from tests.compaction.data import local_files
from tests.emulators import running_emulator
from tests.ops.cluster import StandaloneCluster, spark_home
from tests.ops.job import ROOT, job_env
from tests.ops.online import compare_online

DOC = ROOT / "docs" / "operations.md"
STANDALONE_MARK = "<!-- standalone-submit"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.environ.get("FEATURESTREAM_TEST_CLUSTER") != "1",
                       reason="slow: run by `make test-cluster` (FEATURESTREAM_TEST_CLUSTER=1)"),
]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with running_emulator(tmp_path_factory.mktemp("cluster-emulator")) as emu:
        yield emu


@pytest.fixture(scope="module")
def cluster(stack_env: dict[str, str], emulator: EmulatorProcess,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandaloneCluster]:
    env = job_env({"AWS_ENDPOINT_URL_SAGEMAKER": emulator.url,
                   "AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME": emulator.url})
    running = StandaloneCluster(tmp_path_factory.mktemp("cluster"), env)
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    package.build(out)
    return out


def submit(cluster: StandaloneCluster, dist: Path, job: str, args: list[str], logs: Path) -> int:
    (pyfiles,) = dist.glob("featurestream-*-pyfiles.zip")
    jars = [*(p for p in spark_jars() if "/build/jars/" in p), *map(str, sorted((dist / "jars").glob("*.jar")))]
    command = [
        str(spark_home() / "bin" / "spark-submit"), "--master", cluster.url, "--deploy-mode", "client",
        "--total-executor-cores", "2", "--executor-cores", "1", "--executor-memory", "512m",
        "--driver-memory", "768m", "--conf", f"spark.pyspark.python={sys.executable}",
        "--conf", "spark.ui.enabled=false", "--conf", "spark.driver.host=127.0.0.1",
        "--conf", "spark.driver.bindAddress=127.0.0.1",
        "--jars", ",".join(jars), "--py-files", str(pyfiles), str(dist / "jobs" / job), *args,
    ]
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "stdout.log").open("wb") as out, (logs / "stderr.log").open("wb") as err:
        # From an empty folder: nothing of the checkout is importable except through --py-files
        # (and the venv, which a cluster node would have from requirements.txt).
        return subprocess.run(command, env=cluster.env, cwd=logs, stdout=out, stderr=err, timeout=900,
                              check=False).returncode


def listening(pids: set[int]) -> list[str]:
    """Local addresses our processes (and their children) listen on."""
    groups = set(pids)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in pids:  # process group id
            groups.add(int(stat.parent.name))
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3] for line in out.splitlines()
            if any(int(p) in groups for p in re.findall(r"pid=(\d+)", line))]


def documented_command() -> str:
    """The standalone spark-submit command of docs/operations.md, as written there."""
    text = DOC.read_text(encoding="utf-8")
    match = re.search(re.escape(STANDALONE_MARK) + r".*?-->\s*```bash\n(.*?)```", text, re.DOTALL)
    assert match, f"{DOC} has no {STANDALONE_MARK} --> block"
    return match.group(1)


def site_conf(folder: Path) -> Path:
    """A site's spark-defaults.conf (cluster configuration, not the command): executors sized for this
    machine, loopback, and shuffle partitions that must win over the aws profile's 64."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "spark-defaults.conf").write_text(
        "spark.executor.memory 512m\nspark.executor.cores 1\nspark.cores.max 2\nspark.driver.memory 768m\n"
        "spark.ui.enabled false\nspark.driver.host 127.0.0.1\nspark.driver.bindAddress 127.0.0.1\n"
        "spark.sql.shuffle.partitions 2\n")
    return folder


def _driver_pids(session: int) -> list[int]:
    """The job's Python driver: a process of the submission's session running stream_features.py."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields[3]) == session and b"python" in argv[0] and any(a.endswith(b"stream_features.py") for a in argv):
            found.append(int(proc.name))
    return found


def _json_or_none(line: str) -> dict[str, object] | None:
    try:
        value = json.loads(line) if line.startswith("{") else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def wait_online(spec: FeatureGroupSpec, events: list[dict[str, object]], endpoint: str,
                job: subprocess.Popen[bytes], logs: Path, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while True:
        expected, missing, wrong = compare_online(spec, events, endpoint=endpoint)
        if not missing and not wrong:
            assert expected == 30
            return
        assert job.poll() is None, f"the job exited ({job.returncode}):\n{(logs / 'stdout.log').read_text()[-4000:]}"
        assert time.monotonic() < deadline, (expected, missing[:3], wrong[:2])
        time.sleep(2)


def run_documented_command(cluster: StandaloneCluster, dist: Path, group_file: Path, variables: dict[str, str],
                           logs: Path) -> subprocess.Popen[bytes]:
    """The doc's block in bash, from an empty folder; the checkout hidden from the job's jar lookup."""
    logs.mkdir(parents=True, exist_ok=True)
    nowhere = logs / "no-checkout"
    nowhere.mkdir()
    env = {k: v for k, v in cluster.env.items() if k not in ("PYTHONPATH", "SPARK_CONF_DIR")}
    env.update({
        # spark-submit on PATH as on a cluster's edge node; the site's spark-defaults.conf.
        "PATH": f"{spark_home() / 'bin'}:{env['PATH']}", "SPARK_CONF_DIR": str(site_conf(logs / "site-conf")),
        # No build/ of a checkout to fall back on: the engine and connectors come from the command only.
        "FEATURESTREAM_HOME": str(nowhere),
        # The documented placeholders.
        "MASTER": cluster.url, "DIST": str(dist), "PYTHON": sys.executable, "FEATURE_GROUP": str(group_file),
        "PROFILE": "aws", **variables,
    })
    return subprocess.Popen(["/bin/bash", "-euo", "pipefail", "-c", documented_command()], cwd=nowhere, env=env,
                            stdout=(logs / "stdout.log").open("wb"), stderr=(logs / "stderr.log").open("wb"),
                            start_new_session=True)


def test_stream_and_compaction_on_a_standalone_cluster(cluster: StandaloneCluster, dist: Path,
                                                        emulator: EmulatorProcess, stack_env: dict[str, str],
                                                        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    suffix = uuid.uuid4().hex[:8]
    group = yaml.safe_load((ROOT / "conf/feature_groups/card_activity.yaml").read_text())
    group["source"]["topic"] = f"ops-cluster-{suffix}"
    group["online_store"]["feature_group_name"] = f"ops-cluster-{suffix}"
    group_file = tmp_path / "card_activity.yaml"
    group_file.write_text(yaml.safe_dump(group))
    bootstrap = stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"]
    # What the shipped `aws` profile reads from the driver's environment (docs/operations.md).
    variables = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT", "AWS_REGION": "us-east-1",
        "FEATURESTREAM_OFFLINE_S3_URI": f"s3://featurestream-offline/c-{suffix}",
        "FEATURESTREAM_FEATURE_STORE_ROLE_ARN": "arn:aws:iam::123456789012:role/featurestream",
        "FEATURESTREAM_CHECKPOINT_ROOT": str(tmp_path / "checkpoints"), "FEATURESTREAM_DLQ_PATH": str(tmp_path / "dlq"),
        "FEATURESTREAM_METRICS_PORT": "0", "FEATURESTREAM_STATE_DIR": str(tmp_path / "state"),
    }
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    spec = load_feature_group(group_file)
    sagemaker = boto3.client("sagemaker", endpoint_url=emulator.url)
    ensure_feature_group(sagemaker, spec, load_profile("aws"))
    settings = GeneratorSettings(entities=30, seed=3, events_per_second=3.0,
                                 start=recent_start(900 / 3.0), malformed_rate=0.02)
    events = generate_events(900, settings)
    ensure_topic(bootstrap, spec.source.topic, partitions=2)
    produce_kafka(list(encode(events, settings)), bootstrap, spec.source.topic)

    logs = tmp_path / "stream"
    job = run_documented_command(cluster, dist, group_file, variables, logs)
    try:
        wait_online(spec, events, emulator.url, job, logs)
        # A streaming job runs until stopped: SIGTERM to its Python driver finishes the batch in flight.
        (driver,) = _driver_pids(job.pid)
        os.kill(driver, signal.SIGTERM)
        assert job.wait(timeout=300) == 0, (logs / "stdout.log").read_text()[-4000:]
    finally:
        if job.poll() is None:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait(timeout=60)
    # spark-submit's PythonRunner passes the driver's stderr (the JSON log) on to its stdout.
    ended = [e for e in map(_json_or_none, (logs / "stdout.log").read_text().splitlines())
             if e and e.get("event") == "stream_ended"]
    assert [(e["why"], e["graceful"]) for e in ended] == [("stop", True)], ended
    # spark-submit's partitions (the site's spark-defaults.conf) won over the aws profile's 64.
    offsets = sorted((tmp_path / "checkpoints").rglob("offsets/0"))
    assert offsets and all('"spark.sql.shuffle.partitions":"2"' in p.read_text() for p in offsets), offsets

    # Executors ran on both workers, each in its own JVM (one folder per executor).
    executors = cluster.executor_dirs()
    assert all(len(dirs) >= 1 for dirs in executors.values()), executors
    assert cluster.state()["completedapps"]
    assert all(addr.startswith(("127.0.0.1:", "[::ffff:127.0.0.1]:")) for addr in listening(set(cluster.pids())))

    # The emulator's offline store → the compaction job on the cluster → the DuckDB oracle.
    emulator.flush()
    offline = Path(emulator.options["offline_local_dir"])
    description = sagemaker.describe_feature_group(FeatureGroupName=spec.online_store.feature_group_name)
    source = offline / description["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"].removeprefix("s3://")
    output = tmp_path / "compacted"
    config = tmp_path / "compaction.yaml"
    config.write_text(yaml.safe_dump({
        "region": "us-east-1", "output": str(output), "offline_local_root": str(offline),
        "feature_groups": [{"name": spec.online_store.feature_group_name}], "snapshot": True,
        # The config's default master (local[2]) must not pull the job off the cluster.
        "target_file_size": "1MB", "spark": {"shuffle_partitions": 2},
    }))
    rc = submit(cluster, dist, "compact_offline.py", ["--config", str(config), "--env", "local"], tmp_path / "compact")
    assert rc == 0, (tmp_path / "compact" / "stderr.log").read_text()[-4000:]
    assert len(cluster.state()["completedapps"]) == 2
    assert all(len({d.parent for d in dirs}) == 2 for dirs in cluster.executor_dirs().values())
    (compacted_root,) = oracle.table_folders(output)
    columns, rows = oracle.expected(local_files(source), record_id=spec.entity.key, event_time=spec.event_time.field)
    assert rows and oracle.compacted(oracle.table_at(compacted_root), columns) == rows
