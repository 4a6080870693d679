"""The unmodified AWS Spark connector (sagemaker-feature-store-pyspark) against the emulator.

Only the AWS_ENDPOINT_URL_* settings point it here. The JVM may already be running (the session
`spark` fixture), and it read its environment at launch, so the same endpoints are also given as
the Java SDK's equivalent system properties, which it consults first.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from tests.dev.feature_store.helpers import as_dict, runtime_client, sagemaker_client, unique_name

pytestmark = [pytest.mark.feature_store, pytest.mark.usefixtures("aws_connector")]

ENDPOINT_SETTINGS = {
    "AWS_ENDPOINT_URL_SAGEMAKER": "aws.endpointUrlSageMaker",
    "AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME": "aws.endpointUrlSageMakerFeatureStoreRuntime",
}
FEATURES = [
    {"FeatureName": "customer_id", "FeatureType": "String"},
    {"FeatureName": "event_time", "FeatureType": "String"},
    {"FeatureName": "orders_7d", "FeatureType": "Integral"},
    {"FeatureName": "spend_7d", "FeatureType": "Fractional"},
    {"FeatureName": "segment", "FeatureType": "String"},
]


@pytest.fixture
def connector_endpoint(spark: Any) -> Iterator[Any]:
    """Point the connector's SDK clients at an emulator, then restore the previous settings."""

    def point_at(url: str) -> None:
        system = spark.sparkContext._jvm.java.lang.System
        for env_name, prop in ENDPOINT_SETTINGS.items():
            saved.setdefault(env_name, (os.environ.get(env_name), system.getProperty(prop)))
            os.environ[env_name] = url
            system.setProperty(prop, url)

    saved: dict[str, tuple[str | None, str | None]] = {}
    yield point_at
    system = spark.sparkContext._jvm.java.lang.System
    for env_name, (env_value, prop_value) in saved.items():
        prop = ENDPOINT_SETTINGS[env_name]
        if env_value is None:
            os.environ.pop(env_name, None)
        else:
            os.environ[env_name] = env_value
        if prop_value is None:
            system.clearProperty(prop)
        else:
            system.setProperty(prop, prop_value)


def _create_group(url: str) -> str:
    sm = sagemaker_client(url)
    name = unique_name("connector")
    sm.create_feature_group(
        FeatureGroupName=name, RecordIdentifierFeatureName="customer_id", EventTimeFeatureName="event_time",
        FeatureDefinitions=FEATURES, OnlineStoreConfig={"EnableOnlineStore": True},
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://connector-bucket/fs"}},
    )
    return str(sm.describe_feature_group(FeatureGroupName=name)["FeatureGroupArn"])


def _frame(spark: Any, prefix: str, count: int) -> tuple[Any, dict[str, dict[str, Any]]]:
    """A DataFrame of `count` customers and, computed apart from it, what GetRecord should return."""
    from pyspark.sql.types import DoubleType, LongType, StringType, StructField, StructType

    schema = StructType([
        StructField("customer_id", StringType()), StructField("event_time", StringType()),
        StructField("orders_7d", LongType()), StructField("spend_7d", DoubleType()),
        StructField("segment", StringType()),
    ])
    rows = []
    expected: dict[str, dict[str, Any]] = {}
    for i in range(count):
        rid = f"{prefix}-{i:03d}"
        segment = None if i % 5 == 0 else f"seg{i % 3}"
        row = (rid, f"2024-06-01T{i % 24:02d}:00:00Z", i * 3, i * 1.25 + 1e9 * (i % 2), segment)
        rows.append(row)
        expected[rid] = {"customer_id": rid, "event_time": row[1], "orders_7d": row[2], "spend_7d": row[3]}
        if segment is not None:
            expected[rid]["segment"] = segment
    return spark.createDataFrame(rows, schema).repartition(2), expected


def _assert_online(url: str, arn: str, expected: dict[str, dict[str, Any]]) -> None:
    rt = runtime_client(url)
    for rid, want in expected.items():
        got = as_dict(rt.get_record(FeatureGroupName=arn, RecordIdentifierValueAsString=rid)["Record"])
        # Java's Double.toString spells numbers its own way ("1.00000000125E9"): compare values.
        assert {**got, "orders_7d": int(got["orders_7d"]), "spend_7d": float(got["spend_7d"])} == want, rid


@pytest.mark.parametrize("use_batch_write_record", [False, True], ids=["PutRecord", "BatchWriteRecord"])
def test_ingest_data_into_online_store(
    spark: Any, emulator: Any, connector_endpoint: Any, use_batch_write_record: bool
) -> None:
    from feature_store_pyspark.FeatureStoreManager import FeatureStoreManager

    connector_endpoint(emulator.url)
    arn = _create_group(emulator.url)
    df, expected = _frame(spark, "batch" if use_batch_write_record else "put", 60)
    manager = FeatureStoreManager()
    manager.ingest_data(df, arn, target_stores=["OnlineStore"], use_batch_write_record=use_batch_write_record)
    _assert_online(emulator.url, arn, expected)

    listed = manager.list_records(arn, max_results=100)
    assert sorted(listed["RecordIdentifiers"]) == sorted(expected)


def test_connector_reports_rejected_rows(spark: Any, emulator: Any, connector_endpoint: Any) -> None:
    """A ValidationError from the emulator reaches the connector's failed-rows DataFrame."""
    from feature_store_pyspark.FeatureStoreManager import FeatureStoreManager

    connector_endpoint(emulator.url)
    arn = _create_group(emulator.url)
    good, _ = _frame(spark, "ok", 3)
    bad = spark.createDataFrame(
        [("bad-1", "2024-06-01 00:00:00", 1, 1.0, "s")], good.schema)  # not ISO-8601: rejected
    manager = FeatureStoreManager()
    with pytest.raises(Exception, match="failed to be ingested"):
        manager.ingest_data(good.union(bad), arn, target_stores=["OnlineStore"])
    failed = manager.get_failed_stream_ingestion_data_frame().collect()
    assert [r["customer_id"] for r in failed] == ["bad-1"]
    assert "event_time" in failed[0]["online_ingestion_error"]


def test_connector_retries_throttling(spark: Any, emulator_factory: Any, connector_endpoint: Any) -> None:
    """The Java SDK retries the emulator's ThrottlingException and 5xx: every row still lands."""
    from feature_store_pyspark.FeatureStoreManager import FeatureStoreManager

    emu = emulator_factory(throttle_rate=0.15, error_rate=0.15, seed=11)
    connector_endpoint(emu.url)
    arn = _create_group(emu.url)
    df, expected = _frame(spark, "retry", 30)
    FeatureStoreManager().ingest_data(df, arn, target_stores=["OnlineStore"])
    injected = emu.health()["faults_injected"]
    assert injected["throttled"] > 0 and injected["errors"] > 0
    emu.restart(throttle_rate=0.0, error_rate=0.0)
    _assert_online(emu.url, arn, expected)
