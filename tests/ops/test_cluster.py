"""The streaming job and the compaction job on a real Spark standalone cluster (a master and two
workers from the pyspark distribution, loopback only), submitted the way a cluster runs them:
`spark-submit --py-files <make dist zip> --jars ... build/dist/jobs/<job>.py`. Executors are
separate JVMs with their own Python workers; results are checked against the independent oracles.

Slow (a cluster start and two submissions): `make test-cluster` runs it; `make test` skips it
unless FEATURESTREAM_TEST_CLUSTER=1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml

from featurestream.config import load_feature_group, load_profile
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


def test_stream_and_compaction_on_a_standalone_cluster(cluster: StandaloneCluster, dist: Path,
                                                        emulator: EmulatorProcess, stack_env: dict[str, str],
                                                        tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    group = yaml.safe_load((ROOT / "conf/feature_groups/card_activity.yaml").read_text())
    group["source"]["topic"] = f"ops-cluster-{suffix}"
    group["online_store"]["feature_group_name"] = f"ops-cluster-{suffix}"
    group_file = tmp_path / "card_activity.yaml"
    group_file.write_text(yaml.safe_dump(group))
    bootstrap = stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"]
    profile_file = tmp_path / "cluster.yaml"
    profile_file.write_text(yaml.safe_dump({
        "kind": "aws",
        "kafka": {"bootstrap_servers": bootstrap, "max_offsets_per_trigger": 400},
        "feature_store": {"region": "us-east-1", "offline_store_s3_uri": f"s3://featurestream-offline/c-{suffix}",
                          "role_arn": "arn:aws:iam::123456789012:role/featurestream"},
        # master: null = spark-submit's --master decides, as on EMR, YARN or Kubernetes.
        "spark": {"master": None, "shuffle_partitions": 2, "trigger_interval": "2 seconds"},
        "checkpoint_root": str(tmp_path / "checkpoints"), "dlq_path": str(tmp_path / "dlq"),
        "metrics": {"port": 0}, "lineage": {"file": str(tmp_path / "lineage.jsonl")},
    }))
    spec = load_feature_group(group_file)
    sagemaker = boto3.client("sagemaker", endpoint_url=emulator.url)
    ensure_feature_group(sagemaker, spec, load_profile(profile_file))
    settings = GeneratorSettings(entities=30, seed=3, events_per_second=3.0,
                                 start=recent_start(900 / 3.0), malformed_rate=0.02)
    events = generate_events(900, settings)
    ensure_topic(bootstrap, spec.source.topic, partitions=2)
    produce_kafka(list(encode(events, settings)), bootstrap, spec.source.topic)

    rc = submit(cluster, dist, "stream_features.py",
                ["--feature-group", str(group_file), "--env", str(profile_file), "--available-now"],
                tmp_path / "stream")
    assert rc == 0, (tmp_path / "stream" / "stderr.log").read_text()[-4000:]
    expected, missing, wrong = compare_online(spec, events, endpoint=emulator.url)
    assert expected == 30 and missing == [] and wrong == [], (missing, wrong[:2])

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
        "target_file_size": "1MB", "spark": {"master": None, "shuffle_partitions": 2},
    }))
    rc = submit(cluster, dist, "compact_offline.py", ["--config", str(config)], tmp_path / "compact")
    assert rc == 0, (tmp_path / "compact" / "stderr.log").read_text()[-4000:]
    (manifest,) = output.rglob("_compaction/manifest.json")
    compacted_root = manifest.parent.parent
    columns, rows = oracle.expected(local_files(source), record_id=spec.entity.key, event_time=spec.event_time.field)
    assert rows and oracle.compacted(compacted_root, columns) == rows
