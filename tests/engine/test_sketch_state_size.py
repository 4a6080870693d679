"""The sketch state bound (issue 21), measured by Spark's state store, not by a model of it.

One entity receives 1,000,000 distinct values spread evenly over 24 hours; a group with one
sketch feature over `24h` on 1-minute tiles (1,440 tiles) runs them through the tile engine in a
streaming query (availableNow, the map side folding as in the stream job), and the state store
(RocksDB, as in production) reports the bytes it took for the entity (`rocksdbTotalBytesWritten`
of the micro-batch that put it). A sketch feature's state is that minus the same query's with a
`count` only (the tiles); the README ("State per entity") documents the bound this test asserts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from featurestream.config import load_feature_group
from featurestream.engine import aggregation
from featurestream.engine.pipeline import feature_stream

EVENTS = 1_000_000
DAY_MS = 86_400_000
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a tile boundary
# README "State per entity": KB per sketch feature, whatever the tile (default sizes, buckets 24).
BOUNDS_KB = {"approx_count_distinct": 55, "approx_percentile": 110, "top_k": 15}
FEATURES = {
    "count": "{name: n, agg: count, windows: [24h]}",
    "approx_count_distinct": "{name: merchants, agg: approx_count_distinct, column: merchant_id, windows: [24h]}",
    "approx_percentile": "{name: amount, agg: approx_percentile, column: amount, percentiles: [0.5], windows: [24h]}",
    "top_k": "{name: merchant, agg: top_k, column: merchant_id, k: 1, windows: [24h]}",
}
GROUP = """
entity: {key: card_id, type: string}
event_time: {field: event_time}
source:
  type: kafka
  topic: unused
  format: json
  schema: {card_id: string, merchant_id: string, amount: double, event_time: timestamp}
windows: {tile: 1m, allowed_lateness: 5m}
features:
  - FEATURE
online_store: {feature_group_name: state-size}
"""


@pytest.fixture(scope="module")
def events(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One card, a distinct merchant and amount per event, one event every 86.4 ms over a day."""
    from pyspark.sql import functions as F

    path = str(tmp_path_factory.mktemp("state-size") / "events")
    spark.range(EVENTS, numPartitions=2).select(
        F.lit("card-1").alias("card_id"),
        F.concat(F.lit("merchant-"), F.col("id").cast("string")).alias("merchant_id"),
        (F.col("id") * 0.37).alias("amount"),
        F.timestamp_millis(F.lit(START_MS) + F.col("id") * (DAY_MS // EVENTS)).alias("event_time"),
    ).write.parquet(path)
    return path


def _state_bytes(spark: Any, events: str, tmp_path: Path, feature: str) -> int:
    """Bytes the state store (RocksDB, as in production) took in the last micro-batch that wrote the entity."""
    group = tmp_path / f"{feature}.yaml"
    group.write_text(GROUP.replace("FEATURE", FEATURES[feature]))
    spec = load_feature_group(group)
    checkpoint = str(tmp_path / f"checkpoint-{feature}")

    def consume(output: Any, batch_id: int) -> None:
        # As the stream job does: the map side folds the day's events per entity before the shuffle.
        aggregation.use_batch_watermark(spark, checkpoint, batch_id)
        try:
            output.write.format("noop").mode("overwrite").save()
        finally:
            aggregation.clear_batch_watermark(spark)

    stream = spark.readStream.schema("card_id string, merchant_id string, amount double, event_time timestamp")
    query = (feature_stream(stream.parquet(events), spec).writeStream.outputMode("update").foreachBatch(consume)
             .option("checkpointLocation", checkpoint).trigger(availableNow=True).start())
    query.awaitTermination()
    # RocksDB's own count of the bytes put (key and value rows) in a micro-batch; one entity, one put.
    written = [op["customMetrics"]["rocksdbTotalBytesWritten"] for progress in query.recentProgress
               for op in progress.get("stateOperators", []) if op["numRowsUpdated"]]
    assert written, "no micro-batch wrote the state"
    return int(written[-1])


def test_a_sketch_feature_keeps_a_bounded_state_for_a_million_distinct_values_in_a_day(
        spark: Any, events: str, tmp_path: Path) -> None:
    tiles = _state_bytes(spark, events, tmp_path, "count")
    for feature, bound in BOUNDS_KB.items():
        sketch = _state_bytes(spark, events, tmp_path, feature) - tiles
        print(f"{feature}: {sketch / 1024:.1f} KB in the state store beside the tiles' {tiles / 1024:.1f} KB")
        assert 0 < sketch <= bound * 1024, (feature, sketch)
