"""KPL-aggregated records come out one row per user record; AT_TIMESTAMP and LATEST start where
they should. Expectations come from the producer's own list and from a plain boto3 read of the
stream, never from the source under test."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from featurestream.connectors.kinesis import read_kinesis
from tests.connectors.kinesis.kpl import aggregate
from tests.connectors.kinesis.producer import put_all

pytestmark = pytest.mark.integration


def _read_available(spark, stream: str, endpoint: str, name: str, **options) -> list:
    """Everything the source delivers under availableNow, as Rows (memory sink)."""
    df = read_kinesis(spark, {"stream": stream, "endpoint_url": endpoint, **options})
    query = df.writeStream.format("memory").queryName(name).trigger(availableNow=True).start()
    query.awaitTermination()
    assert query.exception() is None
    return spark.sql(f"SELECT * FROM {name}").collect()


def _arrivals(kinesis, stream: str) -> dict[tuple[str, bytes], datetime]:
    """(partition key, data) -> arrival time, read straight from the emulator with boto3."""
    arrivals: dict[tuple[str, bytes], datetime] = {}
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            for record in page["Records"]:
                arrivals[(record["PartitionKey"], record["Data"])] = record["ApproximateArrivalTimestamp"]
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")
    return arrivals


def test_kpl_aggregated_records_are_deaggregated(kinesis_spark, kinesis, kinesis_endpoint, new_stream) -> None:
    stream = new_stream(2)
    expected: list[tuple[str, bytes]] = []
    entries = []
    for a in range(40):
        users = [(f"user-{a}-{i % 7}", f"agg{a}-rec{i}".encode(),
                  str(2**127 + a) if i % 5 == 0 else None) for i in range(25)]
        expected += [(key, data) for key, data, _ in users]
        entries.append({"PartitionKey": users[0][0], "Data": aggregate(users)})
    plain = [(f"plain-{i}", f"plain-{i}".encode()) for i in range(100)]
    expected += plain
    kinesis.put_records(StreamName=stream, Records=entries)
    put_all(kinesis, stream, plain)

    rows = _read_available(kinesis_spark, stream, kinesis_endpoint, "kpl_rows", starting_position="TRIM_HORIZON")

    assert Counter((r.partitionKey, bytes(r.data)) for r in rows) == Counter(expected)
    # the 25 user records of one aggregate share its Kinesis sequence number
    per_sequence = Counter(r.sequenceNumber for r in rows if r.partitionKey.startswith("user-"))
    assert sorted(per_sequence.values()) == [25] * 40


def test_at_timestamp_starts_at_the_first_record_at_or_after_it(kinesis_spark, kinesis, kinesis_endpoint,
                                                                 new_stream) -> None:
    stream = new_stream(2)
    before = [(f"k{i % 13}", f"before-{i}".encode()) for i in range(600)]
    after = [(f"k{i % 13}", f"after-{i}".encode()) for i in range(600)]
    put_all(kinesis, stream, before)
    put_all(kinesis, stream, after)
    arrivals = _arrivals(kinesis, stream)
    start = min(arrivals[r] for r in after)
    assert max(arrivals[r] for r in before) < start, "both puts landed in the same millisecond"
    expected = Counter(r for r, at in arrivals.items() if at >= start)

    rows = _read_available(kinesis_spark, stream, kinesis_endpoint, "at_ts_rows",
                           starting_position="AT_TIMESTAMP", starting_timestamp=start.astimezone(UTC))

    assert Counter((r.partitionKey, bytes(r.data)) for r in rows) == expected
    assert expected == Counter(after)


def test_latest_skips_what_was_there_before_the_query(kinesis_spark, kinesis, kinesis_endpoint, new_stream,
                                                      tmp_path) -> None:
    stream = new_stream(2)
    put_all(kinesis, stream, [(f"k{i}", f"old-{i}".encode()) for i in range(300)])
    df = read_kinesis(kinesis_spark, {"stream": stream, "endpoint_url": kinesis_endpoint,
                                      "starting_position": "LATEST"})
    query = (df.writeStream.format("memory").queryName("latest_rows")
             .option("checkpointLocation", str(tmp_path / "ck")).start())
    try:
        query.processAllAvailable()
        new = [(f"k{i}", f"new-{i}".encode()) for i in range(300)]
        put_all(kinesis, stream, new)
        query.processAllAvailable()
        progress = [p for p in query.recentProgress if p["numInputRows"] > 0]
    finally:
        query.stop()
    rows = kinesis_spark.sql("SELECT partitionKey, data FROM latest_rows").collect()
    assert Counter((r.partitionKey, bytes(r.data)) for r in rows) == Counter(new)
    # millisBehindLatest per shard is in the query progress
    metrics = progress[-1]["sources"][0]["metrics"]
    assert set(json.loads(metrics["millisBehindLatest"])) == {"shardId-000000000000", "shardId-000000000001"}
    assert int(metrics["maxMillisBehindLatest"]) >= 0
