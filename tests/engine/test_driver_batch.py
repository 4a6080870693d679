"""A collected micro-batch's counters, freshness points and rows sent back to Spark, against
Spark's own aggregation of the same rows (the cached path's `_counter_columns`, `_freshness_column`)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from featurestream.engine import aggregation, driver_batch
from featurestream.engine.pipeline import _FRESH, _counter_columns, _freshness_column


def _union(spark: Any) -> Any:
    """Rows shaped like the union's counting columns, with the nulls the engine can emit, and a
    struct of nested types standing for a group's late rows."""
    from pyspark.sql import functions as F

    rng = random.Random(18)
    start = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    rows = []
    for _ in range(400):
        group = rng.choice([0, 0, 1, 2])
        kind = rng.choice([aggregation.RECORD] * 5 + [aggregation.LATE, aggregation.COUNTERS, None])
        aggregated = rng.choice([None, 0, 0, 1, 2, 7])
        rows.append((group, kind, aggregated, rng.choice([None, 0, 1, 3]), rng.choice([None, 0, 2]),
                     start + timedelta(milliseconds=rng.randrange(600_000)) if rng.random() > 0.05 else None,
                     rng.random() < 0.3, (f"e{rng.randrange(50)}", {"k": rng.randrange(9)}, rng.choice([None, 3]))))
    schema = ("_group int, _kind int, _aggregated long, _duplicates long, _folded long, _as_of timestamp, "
              "_to_dlq boolean, _l struct<id: string, tags: map<string, int>, n: int>")
    frame = spark.createDataFrame(rows, schema)
    return frame.withColumn("_l", F.when(F.col("_kind") == aggregation.LATE, F.col("_l")))


def test_counters_freshness_and_late_rows_match_spark(spark: Any) -> None:
    from pyspark.sql import functions as F

    frame = _union(spark).cache()
    expected = {row["_group"]: row.asDict() for row in
                frame.groupBy("_group").agg(*_counter_columns(F.col("_to_dlq")), _freshness_column()).collect()}
    table = driver_batch.as_table(frame._collect_as_arrow())
    assert table is not None
    for group, want in expected.items():
        part = driver_batch.group_rows(table, group)
        assert driver_batch.group_counters(part) == {k: want[k] for k in driver_batch.COUNTERS}
        assert driver_batch.freshness_points(part) == want[_FRESH]
    assert all(expected[g]["records"] > 40 and expected[g]["decay_records"] > 0 for g in expected)

    # The late rows sent back to Spark (the late sink's and the DLQ's writers read them there).
    back = driver_batch.local_frame(spark, driver_batch.struct_batches(table, "_l"), frame.schema["_l"].dataType)
    want = frame.where("_l is not null").select("_l.*")
    assert back.schema == want.schema
    assert sorted(map(str, back.collect())) == sorted(map(str, want.collect()))
    assert back.count() > 20
    frame.unpersist()
