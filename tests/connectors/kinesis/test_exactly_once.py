"""Acceptance: 2 shards, 8k records produced while the query runs, a split in the middle, the
query crashed twice mid-batch and restarted from its checkpoint. Every produced record is read
exactly once (compared with what the producer sent), a crashed batch replays exactly the same
records, a parent shard is read to its end before its children, and per-key order survives."""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

import pytest
from pyspark.errors import StreamingQueryException

from featurestream.connectors.kinesis import read_kinesis
from tests.connectors.kinesis.producer import BackgroundProducer, split_in_half

pytestmark = pytest.mark.integration

# 400 records per shard and batch: about ten batches, as with 20,000 records at 1,000 (the crashes
# at batches 2 and 5 and the split halfway are where they were), at 2.5 times less producing.
RECORDS = 8_000
MAX_PER_SHARD = 400
KEYS = 97
CRASH_AT = (2, 5)
TIMEOUT_S = 300


class InjectedCrash(RuntimeError):
    """Raised by the sink after it has read a batch, as a dying executor/driver would."""


def _produced() -> list[tuple[str, bytes]]:
    return [(f"e{n % KEYS}", f"{n}|e{n % KEYS}".encode()) for n in range(RECORDS)]


def _rows(spark, path: Path) -> list[tuple[str, bytes, str, str, int]]:
    df = spark.read.parquet(str(path))
    return [(r.partitionKey, bytes(r.data), r.shardId, r.sequenceNumber, r.batch)
            for r in df.select("partitionKey", "data", "shardId", "sequenceNumber", "batch").collect()]


def test_every_record_once_across_split_and_two_crashes(kinesis_spark, kinesis, kinesis_endpoint,
                                                         new_stream, tmp_path: Path) -> None:
    spark = kinesis_spark
    stream = new_stream(2)
    out, crashed_out, checkpoint = tmp_path / "out", tmp_path / "crashed", tmp_path / "checkpoint"
    crashed: set[int] = set()

    def sink(df, batch_id: int) -> None:
        rows = df.select("partitionKey", "data", "shardId", "sequenceNumber")
        if batch_id in CRASH_AT and batch_id not in crashed:
            crashed.add(batch_id)
            rows.write.parquet(str(crashed_out / f"batch={batch_id}"))
            raise InjectedCrash(f"crash in batch {batch_id}")
        rows.write.mode("overwrite").parquet(str(out / f"batch={batch_id}"))

    def start():
        df = read_kinesis(spark, {"stream": stream, "endpoint_url": kinesis_endpoint, "region": "us-east-1",
                                  "starting_position": "TRIM_HORIZON", "max_records_per_shard": MAX_PER_SHARD})
        return df.writeStream.foreachBatch(sink).option("checkpointLocation", str(checkpoint)).start()

    produced = _produced()
    producer = BackgroundProducer(kinesis, stream, produced, midway_after=RECORDS // 2,
                                  midway=lambda: split_in_half(kinesis, stream, "shardId-000000000000"))
    query = start()
    producer.start()
    for crash in CRASH_AT:
        with pytest.raises(StreamingQueryException, match="crash in batch"):
            query.awaitTermination(TIMEOUT_S)
        assert crash in crashed, f"query did not reach batch {crash} in {TIMEOUT_S}s"
        query = start()
    producer.finish()
    query.processAllAvailable()
    query.stop()

    rows = _rows(spark, out)
    # exactly once: the multiset read equals the multiset produced
    assert Counter((key, data) for key, data, *_ in rows) == Counter(produced)

    # a crashed batch's replay read exactly what the crashed attempt read
    for batch in CRASH_AT:
        first = Counter(r[:4] for r in _rows(spark, crashed_out) if r[4] == batch)
        replay = Counter(r[:4] for r in rows if r[4] == batch)
        assert first and first == replay, f"batch {batch} replayed different records"

    # the split parent was read to its end before either child was read at all
    shards = kinesis.list_shards(StreamName=stream)["Shards"]
    children = {s["ShardId"] for s in shards if s.get("ParentShardId") == "shardId-000000000000"}
    assert len(children) == 2
    parent_batches = [r[4] for r in rows if r[2] == "shardId-000000000000"]
    child_batches = [r[4] for r in rows if r[2] in children]
    assert child_batches, "no record was read from the split's children"
    assert max(parent_batches) < min(child_batches)

    # per partition key, records come out in the order they were produced
    by_key: dict[str, list[tuple[int, int, int]]] = defaultdict(list)
    for key, data, _, seq, batch in rows:
        by_key[key].append((batch, int(seq), int(data.split(b"|")[0])))
    for key, seen in by_key.items():
        order = [n for _, _, n in sorted(seen)]
        assert order == sorted(order), f"key {key} out of order"
