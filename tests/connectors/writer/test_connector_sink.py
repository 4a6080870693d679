"""`sink: sagemaker-connector`: AWS's FeatureStoreManager writes, its failed rows reach our DLQ."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from featurestream.config.profile import FeatureStoreSpec
from featurestream.connectors.online_store import build_sink
from featurestream.connectors.writer.connector_sink import ConnectorSink
from tests.connectors.writer.helpers import create_group, events, expected_state, iso, normalise, online_state, target

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("aws_connector")]


@pytest.fixture
def jvm_endpoints(spark: Any) -> Iterator[None]:
    """The sink points the shared JVM's AWS SDK at our emulator; put the JVM back afterwards."""
    system = spark.sparkContext._jvm.java.lang.System
    keys = ("aws.endpointUrlSageMaker", "aws.endpointUrlSageMakerFeatureStoreRuntime")
    saved = {k: system.getProperty(k) for k in keys}
    yield
    for key, value in saved.items():
        if value is None:
            system.clearProperty(key)
        else:
            system.setProperty(key, value)


@pytest.mark.parametrize("write_mode", ["batch", "put"])
def test_connector_writes_latest_and_dead_letters_rejected_rows(
    spark, emulator, jvm_endpoints, tmp_path: Path, write_mode: str
) -> None:
    name = create_group(emulator.url)["FeatureGroupName"]
    rows = events(40, per_entity=2, seed=8)
    bad = rows[0]["id"]
    frame = spark.createDataFrame(
        [(r["id"], "not-a-time" if r["id"] == bad else iso(r["ts"]), r["n"], r["x"], r["s"]) for r in rows],
        "id string, ts string, n long, x double, s string")
    store = FeatureStoreSpec(sink="sagemaker-connector", write_mode=write_mode, runtime_endpoint_url=emulator.url)
    sink = build_sink(target(name), store, str(tmp_path / "dlq"))
    assert isinstance(sink, ConnectorSink)

    metrics = sink.write_batch(frame, batch_id=4)

    good = expected_state([r for r in rows if r["id"] != bad])
    assert normalise(online_state(emulator.url, name, sorted([*good, bad]))) == normalise(good)
    dlq = pq.read_table(tmp_path / "dlq").to_pylist()
    assert [(e["record_identifier"], e["error_code"], e["sink"], int(e["batch_id"])) for e in dlq] == [
        (bad, "ValidationError", "sagemaker-connector", 4)]
    assert "not-a-time" in dlq[0]["error_message"] and '"ts":"not-a-time"' in dlq[0]["record"]
    assert (metrics.records_in, metrics.entities, metrics.records_written, metrics.dlq) == (80, 40, 39, 1)


def test_connector_takes_one_row_per_entity_as_is(spark, emulator, jvm_endpoints, tmp_path: Path) -> None:
    # The feature pipeline's case: one row per entity, plus columns that are not features.
    name = create_group(emulator.url)["FeatureGroupName"]
    rows = events(30, per_entity=1, seed=9)
    frame = spark.createDataFrame([(r["id"], iso(r["ts"]), r["n"], r["x"], r["s"], "extra") for r in rows],
                                  "id string, ts string, n long, x double, s string, not_a_feature string")
    store = FeatureStoreSpec(sink="sagemaker-connector", write_mode="batch", runtime_endpoint_url=emulator.url)
    sink = build_sink(replace(target(name), already_unique=True), store, str(tmp_path / "dlq"))
    assert isinstance(sink, ConnectorSink)
    # No latest-per-entity aggregate (a shuffle) for rows the caller says are unique.
    assert "Aggregate" not in sink._frame(frame)._jdf.queryExecution().optimizedPlan().toString()

    metrics = sink.write_batch(frame, batch_id=0)

    good = expected_state(rows)
    assert normalise(online_state(emulator.url, name, sorted(good))) == normalise(good)
    assert (metrics.records_in, metrics.entities, metrics.records_written, metrics.dlq) == (30, 30, 30, 0)
