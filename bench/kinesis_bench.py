"""Kinesis source throughput: our Spark source into a `noop` sink vs a bare boto3 GetRecords loop.

Both sides drain the same shards of the same kinesis-local (a private instance this script
starts on free ports and stops again), alternating, several rounds; the medians are compared.
The bare loop is the emulator's ceiling: one client asking for 10,000 records per call with
nothing else to do. Writes bench/results/kinesis.json (format of bench/common.py).

    .venv/bin/python bench/kinesis_bench.py [--records N] [--shards S] [--rounds R]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import boto3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import Pair, write_results  # noqa: E402
from connectors.kinesis import builtin_jar_path, read_kinesis  # noqa: E402
from local_stack import manager  # noqa: E402
from local_stack.config import DEFAULT_PORTS, StackConfig  # noqa: E402

PUT_BATCH = 500
RECORD_BYTES = 200


def _free_ports(count: int) -> list[int]:
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


def _private_stack(state_dir: Path) -> StackConfig:
    """kinesis-local on free ports with its own state dir, next to any stack on the defaults."""
    ports = dict(DEFAULT_PORTS)
    ports["kinesis"], ports["kinesis-tls"] = _free_ports(2)
    return StackConfig(state_dir=state_dir, root=ROOT, ports=ports)


def _fill(client: Any, stream: str, records: int) -> float:
    """Puts `records` records of RECORD_BYTES from one thread; returns records/s."""
    payload = b"x" * (RECORD_BYTES - 12)
    started = time.perf_counter()
    for start in range(0, records, PUT_BATCH):
        entries = [{"PartitionKey": f"k{n}", "Data": b"%011d|" % n + payload}
                   for n in range(start, min(start + PUT_BATCH, records))]
        response = client.put_records(StreamName=stream, Records=entries)
        if response.get("FailedRecordCount"):
            raise RuntimeError(f"{response['FailedRecordCount']} records refused")
    return records / (time.perf_counter() - started)


def bare_loop(client: Any, stream: str) -> tuple[int, float]:
    """Drains every shard from TRIM_HORIZON with GetRecords(Limit=10000); (records, seconds)."""
    started = time.perf_counter()
    total = 0
    for shard in client.list_shards(StreamName=stream)["Shards"]:
        iterator = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = client.get_records(ShardIterator=iterator, Limit=10_000)
            total += len(page["Records"])
            if page.get("MillisBehindLatest", 0) == 0 and len(page["Records"]) < 10_000:
                break
            iterator = page.get("NextShardIterator")
    return total, time.perf_counter() - started


def our_source(spark: Any, stream: str, endpoint: str, checkpoint: Path) -> tuple[int, float]:
    """Drains the stream with our source into `noop` under availableNow; (records, seconds)."""
    df = read_kinesis(spark, {"stream": stream, "endpoint_url": endpoint, "starting_position": "TRIM_HORIZON"})
    started = time.perf_counter()
    query = (df.writeStream.format("noop").option("checkpointLocation", str(checkpoint))
             .trigger(availableNow=True).start())
    query.awaitTermination()
    elapsed = time.perf_counter() - started
    if query.exception() is not None:
        raise RuntimeError(f"query failed: {query.exception()}")
    return sum(p["numInputRows"] for p in query.recentProgress), elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if not builtin_jar_path().is_file():
        print(f"{builtin_jar_path()} is missing: run `make kinesis-source`", file=sys.stderr)
        return 1

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    work = Path(tempfile.mkdtemp(prefix="kinesis-bench-"))
    cfg = _private_stack(work / "state")
    os.environ.update(cfg.aws_env())
    manager.up(["kinesis"], cfg)
    try:
        endpoint = cfg.url("kinesis")
        client = boto3.client("kinesis", endpoint_url=endpoint, region_name=cfg.region)
        stream = f"bench-{uuid.uuid4().hex[:8]}"
        client.create_stream(StreamName=stream, ShardCount=args.shards)
        client.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.2})
        put_rate = _fill(client, stream, args.records)

        from featurestream.config.profile import SparkSpec
        from featurestream.spark import local_session
        spark = local_session("kinesis-bench", SparkSpec(master="local[2]", shuffle_partitions=2))
        # warm-up: JVM classes, the SDK client, Spark's streaming machinery
        our_source(spark, stream, endpoint, work / "warm")
        ours_rates, bare_rates, ours_counts, bare_counts = [], [], [], []
        for round_no in range(args.rounds):
            count, seconds = bare_loop(client, stream)
            bare_counts.append(count)
            bare_rates.append(count / seconds)
            count, seconds = our_source(spark, stream, endpoint, work / f"ck-{round_no}")
            ours_counts.append(count)
            ours_rates.append(count / seconds)
            print(f"round {round_no}: bare {bare_rates[-1]:,.0f} rec/s, ours {ours_rates[-1]:,.0f} rec/s")
        spark.stop()
    finally:
        manager.down(["kinesis"], cfg)
        shutil.rmtree(work, ignore_errors=True)

    ours_rates.sort()
    bare_rates.sort()
    pairs = [Pair("vs bare GetRecords loop", ours_rates[len(ours_rates) // 2], bare_rates[len(bare_rates) // 2],
                  "records/s")]
    checks = {
        "every_round_read_all_records": all(c == args.records for c in ours_counts + bare_counts),
        "ours_records_per_s_by_round": [round(r) for r in ours_rates],
        "bare_records_per_s_by_round": [round(r) for r in bare_rates],
        "emulator_put_records_per_s": round(put_rate),
        "ours_seconds_include": "query start to availableNow termination (planning, probes, noop write)",
    }
    params = {"records": args.records, "shards": args.shards, "rounds": args.rounds, "record_bytes": RECORD_BYTES,
              "spark_master": "local[2]", "max_records_per_shard_per_batch": 100_000, "get_records_limit": 10_000}
    write_results("kinesis", params, pairs, checks)
    return 0 if checks["every_round_read_all_records"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
