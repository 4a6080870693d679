"""The archive's micro-batch body against the real catalog: a replayed batch id is not appended
twice, and a reader that is not Spark (pyiceberg) sees each event once, partitioned by event date."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from featurestream import iceberg
from featurestream.config import load_profile
from featurestream.engine.archive import ArchiveWriter, table_name
from featurestream.io import s3a


def test_a_replayed_batch_is_archived_once(stack_env: dict[str, str], spark: Any) -> None:
    catalog = iceberg.from_profile(load_profile("local"))
    s3a.configure_session(spark, stack_env["AWS_ENDPOINT_URL_S3"], "us-east-1", ["featurestream-offline"])
    iceberg.configure_session(spark, catalog)
    name = table_name("kafka", f"Payments-{uuid.uuid4().hex[:6]}")
    writer = ArchiveWriter(catalog.spark_table("raw_events", name), "/checkpoints/archive/x", "event_time")

    def batch(first: int, count: int) -> tuple[Any, list[tuple[str, float, datetime]]]:
        rows = [(f"c{i % 3}", i * 1.5, datetime(2026, 11, 1 + i % 2, 12, tzinfo=UTC))
                for i in range(first, first + count)]
        return spark.createDataFrame(rows, "card_id string, amount double, event_time timestamp"), rows

    first, rows0 = batch(0, 6)
    second, rows1 = batch(6, 4)
    writer(first, 0)
    writer(first, 0)  # replayed after a crash between the Iceberg commit and Spark's commit log
    writer(second, 1)
    table = iceberg.load_catalog(catalog).load_table(("raw_events", name))
    got = Counter((r["card_id"], r["amount"], r["event_time"]) for r in table.scan().to_arrow().to_pylist())
    assert got == Counter(rows0 + rows1)
    assert [f.name for f in table.spec().fields] == ["event_date"]
    assert writer.last_committed(spark) == 1
