"""One catalog for Spark and pyiceberg: the local profile's JDBC catalog (the stack's PostgreSQL,
files on its S3), each side reading the table the other created and wrote."""

from __future__ import annotations

import uuid
from typing import Any

import pyarrow as pa

from featurestream import iceberg
from featurestream.config import load_profile
from featurestream.io import s3a


def test_spark_and_pyiceberg_see_each_others_tables(stack_env: dict[str, str], spark: Any) -> None:
    catalog = iceberg.from_profile(load_profile("local"))
    s3a.configure_session(spark, stack_env["AWS_ENDPOINT_URL_S3"], "us-east-1", ["featurestream-offline"])
    iceberg.configure_session(spark, catalog)
    client = iceberg.load_catalog(catalog)
    namespace = f"roundtrip_{uuid.uuid4().hex[:8]}"
    client.create_namespace(namespace)

    # Python writes, Spark reads.
    rows = {"id": [1, 2, 3], "name": ["a", "b", None]}
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    table = client.create_table(f"{namespace}.from_python", schema=schema)
    table.append(pa.table(rows, schema=schema))
    seen = spark.table(catalog.spark_table(namespace, "from_python")).orderBy("id").collect()
    assert [(r.id, r.name) for r in seen] == list(zip(rows["id"], rows["name"], strict=True))

    # Spark writes, Python reads.
    name = catalog.spark_table(namespace, "from_spark")
    spark.sql(f"CREATE TABLE {name} (id BIGINT, amount DOUBLE) USING iceberg")
    spark.sql(f"INSERT INTO {name} VALUES (7, 1.5), (8, -2.0)")
    read = client.load_table(f"{namespace}.from_spark")
    assert sorted(read.scan().to_arrow().to_pylist(), key=lambda r: r["id"]) == [
        {"id": 7, "amount": 1.5}, {"id": 8, "amount": -2.0}]
    # Plain s3:// locations, which Athena, Trino and DuckDB read as they are.
    assert read.location() == f"s3://featurestream-offline/iceberg/{namespace}/from_spark"
    assert {t for _, t in client.list_tables(namespace)} == {"from_python", "from_spark"}
