"""Feature Store emulator throughput: PutRecord and BatchWriteRecord through boto3.

Each pair runs the same boto3 client loop (same threads, same records) against the emulator
and against a no-op HTTP endpoint on loopback that answers every call with an empty success:
the no-op side is the client's own ceiling, so a ratio near 1 means the emulator is not the
bottleneck. Runs are interleaved and the median of the repeats is reported. A raw-HTTP load from
several processes measures the emulator's own capacity beyond one Python client, and the
written records are checked online (sample) and offline (every acknowledged write, once).

    .venv/bin/python bench/feature_store_bench.py [--put-calls 3000] [--batch-calls 300] ...
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing as mp
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Pair, machine, write_results
from featurestream.dev.feature_store import EmulatorProcess

GROUP = "bench-group"
REGION = "us-east-1"
FEATURES = [
    {"FeatureName": "entity_id", "FeatureType": "String"},
    {"FeatureName": "event_time", "FeatureType": "String"},
    {"FeatureName": "count_1h", "FeatureType": "Integral"},
    {"FeatureName": "sum_1h", "FeatureType": "Fractional"},
    {"FeatureName": "last_country", "FeatureType": "String"},
]
BATCH_SIZE = 25


# -- the no-op endpoint ---------------------------------------------------------------------
_BATCH_OK = b'{"Errors":[],"UnprocessedEntries":[]}'


async def _noop_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            body = _BATCH_OK if b" /BatchWriteRecord " in head.split(b"\r\n", 1)[0] else b""
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-amzn-RequestId: noop\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
            )
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


def _serve_noop(port_queue: Any) -> None:
    async def main() -> None:
        server = await asyncio.start_server(_noop_connection, "127.0.0.1", 0)
        port_queue.put(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# -- the boto3 client loop ------------------------------------------------------------------
def _record(entity: str, i: int) -> list[dict[str, str]]:
    values = {
        "entity_id": entity,
        "event_time": f"2024-06-01T{i % 24:02d}:{i % 60:02d}:00Z",
        "count_1h": str(i),
        "sum_1h": str(i * 1.5),
        "last_country": "NL",
    }
    return [{"FeatureName": k, "ValueAsString": v} for k, v in values.items()]


def _client(url: str, threads: int) -> Any:
    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, max_pool_connections=threads)
    return boto3.client("sagemaker-featurestore-runtime", endpoint_url=url, region_name=REGION, config=config)


def _run_threads(threads: int, work: Callable[[int], None]) -> float:
    """Run work(thread_index) on `threads` threads started together; wall seconds."""
    barrier = threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def target(t: int) -> None:
        barrier.wait()
        try:
            work(t)
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=target, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    barrier.wait()
    start = time.perf_counter()
    for th in pool:
        th.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise errors[0]
    return elapsed


class Loop:
    """The same client loop for any endpoint; counts what it wrote."""

    def __init__(self, url: str, threads: int, tag: str) -> None:
        self.clients = [_client(url, threads) for _ in range(threads)]
        self.threads = threads
        self.tag = tag
        self.runs = 0
        self.written: list[str] = []

    def put_record(self, calls: int) -> float:
        """PutRecord calls per second."""
        self.runs += 1
        per_thread = calls // self.threads
        ids = [[f"{self.tag}-p{self.runs}-{t}-{i}" for i in range(per_thread)] for t in range(self.threads)]

        def work(t: int) -> None:
            client = self.clients[t]
            for i, rid in enumerate(ids[t]):
                client.put_record(FeatureGroupName=GROUP, Record=_record(rid, i))

        elapsed = _run_threads(self.threads, work)
        self.written += [rid for chunk in ids for rid in chunk]
        return per_thread * self.threads / elapsed

    def batch_write(self, calls: int) -> float:
        """Records per second written with BatchWriteRecord of 25."""
        self.runs += 1
        per_thread = calls // self.threads
        ids = [[[f"{self.tag}-b{self.runs}-{t}-{i}-{j}" for j in range(BATCH_SIZE)] for i in range(per_thread)]
               for t in range(self.threads)]

        def work(t: int) -> None:
            client = self.clients[t]
            for i, batch in enumerate(ids[t]):
                resp = client.batch_write_record(Entries=[
                    {"FeatureGroupName": GROUP, "Record": _record(rid, i)} for rid in batch])
                if resp["Errors"] or resp["UnprocessedEntries"]:
                    raise RuntimeError(f"batch write not fully applied: {resp['Errors'][:1]}")

        elapsed = _run_threads(self.threads, work)
        self.written += [rid for chunk in ids for batch in chunk for rid in batch]
        return per_thread * self.threads * BATCH_SIZE / elapsed


# -- raw HTTP capacity ----------------------------------------------------------------------
def _raw_put_worker(port: int, requests: int, tag: str, out: Any) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    bodies = [json.dumps({"Record": _record(f"{tag}-{i}", i)}) for i in range(requests)]
    start = time.perf_counter()
    for body in bodies:
        conn.request("PUT", f"/FeatureGroup/{GROUP}", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}")
    out.put((requests, time.perf_counter() - start))


def raw_capacity(port: int, procs: int, requests: int) -> float:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    workers = [ctx.Process(target=_raw_put_worker, args=(port, requests // procs, f"raw{k}", out))
               for k in range(procs)]
    for w in workers:
        w.start()
    results = [out.get(timeout=300) for _ in workers]
    for w in workers:
        w.join()
    # The workers time their own loops: process start-up is not part of the figure.
    return sum(n for n, _ in results) / max(t for _, t in results)


# -- main -----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--put-calls", type=int, default=3000)
    parser.add_argument("--batch-calls", type=int, default=300)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--raw-procs", type=int, default=2)
    parser.add_argument("--raw-requests", type=int, default=6000)
    parser.add_argument("--flush-interval-s", type=float, default=5.0)
    args = parser.parse_args(argv)
    where = machine()  # before the run: the load average says how busy the machine already was
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

    ctx = mp.get_context("spawn")
    port_queue = ctx.Queue()
    noop = ctx.Process(target=_serve_noop, args=(port_queue,), daemon=True)
    noop.start()
    noop_url = f"http://127.0.0.1:{port_queue.get(timeout=30)}"

    with tempfile.TemporaryDirectory(prefix="fs-bench-") as tmp:
        emu = EmulatorProcess(Path(tmp) / "state", offline_local_dir=Path(tmp) / "offline",
                              flush_interval_s=args.flush_interval_s)
        emu.start()
        try:
            boto3.client("sagemaker", endpoint_url=emu.url, region_name=REGION).create_feature_group(
                FeatureGroupName=GROUP, RecordIdentifierFeatureName="entity_id", EventTimeFeatureName="event_time",
                FeatureDefinitions=FEATURES, OnlineStoreConfig={"EnableOnlineStore": True},
                OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://bench-bucket/offline"}},
            )
            ours, base = Loop(emu.url, args.threads, "emu"), Loop(noop_url, args.threads, "noop")
            for loop in (ours, base):  # warm-up: connections, botocore caches
                loop.put_record(args.threads * 20)
                loop.batch_write(args.threads * 2)

            put = _interleaved(args.repeats, lambda: ours.put_record(args.put_calls),
                               lambda: base.put_record(args.put_calls))
            batch = _interleaved(args.repeats, lambda: ours.batch_write(args.batch_calls),
                                 lambda: base.batch_write(args.batch_calls))
            raw = raw_capacity(emu.port or 0, args.raw_procs, args.raw_requests)
            checks = _verify(emu, ours.written + [f"raw{k}-{i}" for k in range(args.raw_procs)
                                                  for i in range(args.raw_requests // args.raw_procs)])
        finally:
            emu.stop()
            noop.terminate()
            noop.join()

    checks = {
        "emulator_put_record_calls_per_s_raw_http": round(raw, 1),
        "raw_http_client_processes": args.raw_procs,
        **checks,
    }
    pairs = [
        Pair(f"PutRecord vs no-op endpoint (boto3, {args.threads} threads)", put[0], put[1], "calls/s"),
        Pair(f"BatchWriteRecord x25 vs no-op endpoint (boto3, {args.threads} threads)", batch[0], batch[1],
             "records/s"),
    ]
    write_results("feature-store", vars(args), pairs, checks, machine_description=where)
    return 0


def _interleaved(repeats: int, ours: Callable[[], float], baseline: Callable[[], float]) -> tuple[float, float]:
    """Alternate the two sides so that load changes on the machine hit both; medians."""
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeats):
        a.append(ours())
        b.append(baseline())
    a.sort()
    b.sort()
    return a[len(a) // 2], b[len(b) // 2]


def _verify(emu: EmulatorProcess, written: list[str]) -> dict[str, Any]:
    """Every acknowledged write is online (sampled) and in the offline store exactly once."""
    rt = boto3.client("sagemaker-featurestore-runtime", endpoint_url=emu.url, region_name=REGION)
    sample = written[:: max(1, len(written) // 1000)]
    found = 0
    for start in range(0, len(sample), 100):
        resp = rt.batch_get_record(Identifiers=[
            {"FeatureGroupName": GROUP, "RecordIdentifiersValueAsString": sample[start:start + 100]}])
        found += len(resp["Records"])
    emu.flush()
    health = emu.health()
    sqlite = health["sqlite"]
    return {
        "acknowledged_writes": len(written),
        "online_sample_found": f"{found}/{len(sample)}",
        "offline_rows_written": health["offline_rows_written"],
        "offline_rows_match_acknowledged_writes": health["offline_rows_written"] == len(written),
        "offline_files_written": health["offline_files_written"],
        "sqlite_writes_per_commit": round(sqlite["writes"] / max(1, sqlite["commits"]), 2),
    }


if __name__ == "__main__":
    sys.exit(main())
