"""docker/ stays buildable and honest without a Docker engine: hadolint passes, and every version,
port and file the Dockerfile, the compose file, the Prometheus/Grafana files name agrees with the
project (pyproject.toml, the Makefile, the poms, the metrics the job really exposes)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from featurestream.config.profile import DEFAULT_METRICS_PORT
from featurestream.io.jars import CLUSTER_PACKAGES
from featurestream.ops.metrics import JobMetrics
from featurestream.ops.progress import BatchProgress
from tests.ops.samples import progress
from tests.ops.test_metrics import EngineTotals, batch, scrape

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILE = (DOCKER / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def pin(name: str) -> str:
    """The version development runs: pyproject.toml has ranges, the lock has the versions."""
    lock = (ROOT / "requirements" / "dev.lock").read_text()
    (version,) = re.findall(rf"^{re.escape(name)}==(\S+)", lock, re.MULTILINE | re.IGNORECASE)
    return version


def pom_property(pom: Path, name: str) -> str:
    match = re.search(rf"<{re.escape(name)}>([^<]+)</{re.escape(name)}>", pom.read_text())
    assert match, f"{name} not in {pom}"
    return match.group(1)


def arg(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE, re.MULTILINE)
    assert match, f"ARG {name} missing"
    return match.group(1)


def image_tag(service: str) -> str:
    return str(COMPOSE["services"][service]["image"]).rsplit(":", 1)[1]


def test_hadolint_passes() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), "--failure-threshold", "info", str(DOCKER / "Dockerfile")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_versions_follow_the_project() -> None:
    makefile_python = re.search(r"^PY \?= python(\S+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert makefile_python and arg("PYTHON_VERSION") == makefile_python.group(1)
    minor = int(arg("PYTHON_VERSION").split(".")[1])
    assert PYPROJECT["project"]["requires-python"] == f">=3.{minor},<3.{minor + 1}"
    spark = pin("pyspark")
    assert arg("SPARK_VERSION") == spark == pom_property(ROOT / "conf/jars/pom.xml", "spark.version")
    assert f"org.apache.spark:spark-sql-kafka-0-10_2.12:{spark}" in CLUSTER_PACKAGES
    iceberg = pom_property(ROOT / "conf/jars/pom.xml", "iceberg.version")
    assert f"org.apache.iceberg:iceberg-spark-runtime-3.5_2.12:{iceberg}" in CLUSTER_PACKAGES
    for module in ("engine-jvm", "connectors/kinesis-source"):
        assert arg("JAVA_VERSION") == pom_property(ROOT / module / "pom.xml", "maven.compiler.release")
    assert image_tag("kafka") == pom_property(ROOT / "conf/jars/kafka/pom.xml", "kafka.version")
    assert image_tag("s3") == pin("moto")
    # The stack runs Debian's PostgreSQL 15.
    assert image_tag("postgres").split(".")[0] == "15"


def test_dockerfile_copies_files_that_exist() -> None:
    for source in re.findall(r"^COPY (?!--from)(\S+) ", DOCKERFILE, re.MULTILINE):
        for part in source.split():
            assert (ROOT / part).exists(), part


def test_compose_is_consistent() -> None:
    services = COMPOSE["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
        depends = service.get("depends_on", [])
        for dependency in depends if isinstance(depends, list) else depends.keys():
            assert dependency in services, (name, dependency)
        build = service.get("build")
        if build:
            assert (DOCKER / build["context"] / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"
        command = service.get("command", [])
        for item in command:
            if isinstance(item, str) and item.startswith("conf/"):
                assert (ROOT / item).is_file(), item
        for volume in service.get("volumes", []):
            local = volume.split(":", 1)[0]
            if local.startswith("./"):
                assert (DOCKER / local).exists(), volume
    for secret in COMPOSE["secrets"].values():
        # Operators create these; git must never carry them.
        assert secret["file"].startswith("./secrets/")
    assert (DOCKER / "secrets" / ".gitignore").read_text().splitlines()[1] == "*"


def test_metrics_port_is_the_same_everywhere() -> None:
    port = DEFAULT_METRICS_PORT
    stream = COMPOSE["services"]["stream"]
    assert stream["environment"]["FEATURESTREAM_METRICS_PORT"] == str(port)
    assert f"127.0.0.1:{port}:{port}" in stream["ports"]
    assert f"EXPOSE {port}" in DOCKERFILE
    prometheus = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    assert prometheus["scrape_configs"][0]["static_configs"][0]["targets"] == [f"stream:{port}"]


def exposed_names() -> set[str]:
    """Every sample name the job's registry produces once each source has reported something."""
    from featurestream.connectors.writer.metrics import MetricsHistory

    history = MetricsHistory()
    history.record(batch(feature_group="fg", batch_id=0, records_in=1, latency_ms_p50=1.0, latency_ms_p99=2.0,
                         seconds=0.1))
    registry = CollectorRegistry()
    metrics = JobMetrics(registry, writer_snapshot=history.snapshot)
    metrics.observe_progress(BatchProgress.from_dict(progress(observed={"featurestream_dlq": {"rows": 1}})))
    # The quantile gauge covers only the recent window, counted from the wall clock: observe now,
    # or the sample progress (a fixed date) ages out of it and the series disappears.
    metrics.observe_freshness([1.0])
    metrics.watch_engine("q", EngineTotals(aggregated=1, late_events=1, duplicates=1, records=1, decay_records=1))
    metrics.lineage_errors.inc()
    metrics.shutdown_seconds.set(1)
    return {name for name, _ in scrape(registry)}


def referenced(text: str) -> set[str]:
    return set(re.findall(r"\bfeaturestream_[a-z_]+\b", text))


@pytest.mark.parametrize("path", ["grafana/dashboards/featurestream.json", "alerts.yml"])
def test_dashboards_and_alerts_use_real_metrics(path: str) -> None:
    text = (DOCKER / path).read_text()
    if path.endswith(".json"):
        exprs = [t["expr"] for panel in json.loads(text)["panels"] for t in panel["targets"]]
        text = "\n".join(exprs)
        assert len(exprs) >= 14
    names = referenced(text)
    assert names and names <= exposed_names(), names - exposed_names()


def test_operations_doc_lists_every_metric() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text()
    families = {re.sub(r"_(total|bucket|count|sum|created)$", "", n) for n in exposed_names()
                if n.startswith("featurestream_")}
    missing = {name for name in families if name not in doc}
    assert not missing, missing
