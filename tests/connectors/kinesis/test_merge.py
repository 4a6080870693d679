"""A merge: the child has two parents, and is read only after both are read to their end."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from featurestream.connectors.kinesis import read_kinesis
from tests.connectors.kinesis.producer import put_all

pytestmark = pytest.mark.integration


def test_merged_shard_is_read_after_both_parents(kinesis_spark, kinesis, kinesis_endpoint, new_stream,
                                                 tmp_path: Path) -> None:
    stream = new_stream(2)
    before = [(f"k{i % 31}", f"{i}".encode()) for i in range(1500)]
    after = [(f"k{i % 31}", f"{i}".encode()) for i in range(1500, 3000)]
    put_all(kinesis, stream, before)
    kinesis.merge_shards(StreamName=stream, ShardToMerge="shardId-000000000000",
                         AdjacentShardToMerge="shardId-000000000001")
    kinesis.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.2, "MaxAttempts": 150})
    put_all(kinesis, stream, after)
    child = next(s["ShardId"] for s in kinesis.list_shards(StreamName=stream)["Shards"]
                 if s.get("AdjacentParentShardId"))

    seen: list[tuple[int, str, str, bytes, str]] = []

    def sink(df, batch_id: int) -> None:
        seen.extend((batch_id, r.shardId, r.partitionKey, bytes(r.data), r.sequenceNumber) for r in df.collect())

    df = read_kinesis(kinesis_spark, {"stream": stream, "endpoint_url": kinesis_endpoint,
                                      "starting_position": "TRIM_HORIZON", "max_records_per_shard": 400})
    query = (df.writeStream.foreachBatch(sink).option("checkpointLocation", str(tmp_path / "ck"))
             .trigger(availableNow=True).start())
    query.awaitTermination()
    assert query.exception() is None

    assert Counter((key, data) for _, _, key, data, _ in seen) == Counter(before + after)
    parent_batches = [b for b, shard, *_ in seen if shard != child]
    child_batches = [b for b, shard, *_ in seen if shard == child]
    assert child_batches and max(parent_batches) < min(child_batches)
    # per key, produced order (the data is the production index)
    for key in {k for k, _ in before}:
        order = [int(d) for _, _, d, _ in sorted((b, int(seq), d, k) for b, _, k, d, seq in seen if k == key)]
        assert order == sorted(order)
