"""`featurestream backfill` vs Spark window functions over the same events, same output format.

    make bench-backfill            # → bench/results/backfill.json (10M events, 100k cards, 30 days)
    make bench-backfill BENCH_ARGS="--events 4000000"    # a smaller run when the machine has less time
    .venv/bin/python bench/backfill_bench.py --events 200000 --entities 2000 --days 3 --results-dir /tmp/x

Size: the issue's ~10M events over 100k cards is the default. Measured on 2026-12-06 (CPU
seconds, the machine loaded by others) at 1M events / 10k cards and 2M / 20k: ours in daily
chunks 210 and 254 CPU s, window functions 49 and 68, ours as one chunk 106 at 1M. The daily
side is mostly a fixed cost per chunk (~3.5-5.5 CPU s), so a straight-line fit gives at 10M about
610 (daily) + 210 (window functions) + 1,060 (one chunk) CPU s: ~25-30 minutes alone on 2 cores.
Alone on the machine at 4M events (2026-12-06) the whole bench took 7.5 minutes (daily 307.5,
window functions 71.8, one chunk 195.0 CPU s); at 10M, 15 minutes (daily 643.5, window functions
152.4, one chunk 479.3 CPU s; peak heap 10.7 GB daily, 12.8 GB one chunk).
The session's driver (the executors, in local mode) gets `--driver-memory` (default 12g, what the
10M run had): at 1 GB the one-chunk run of 2M events ran out of heap merging the write's sort spills.

Input: `--events` events of `--entities` cards spread uniformly over `--days` days (ending at
today's midnight UTC), 1% with a non-positive amount (the group's filter drops them), written as
Parquet by pyarrow, one file per day in time order. The group is the stream benchmark's
(`bench/stream_bench.py`: tile 1m, windows 5m, 1h, 24h x count, sum, mean, max, stddev_pop). One
local[2] session:

* ours: `run_backfill` (the CLI's body) from the Parquet files, in daily chunks, into an offline
  store folder in SageMaker's Glue layout: a record at every event and every decay boundary (one
  batch pass per chunk, the engine state carried in a Parquet folder from chunk to chunk);
* baseline: the same features at every event, the usual batch way: per window of n tiles,
  `Window.partitionBy(card).orderBy(tile).rangeBetween(-(n-1), -1)` over the earlier tiles plus
  `Window.partitionBy(card, tile).orderBy(event_time).rangeBetween(unboundedPreceding, currentRow)`
  over the current one (the definition's "tiles ⌊T/τ⌋-n+1 … ⌊T/τ⌋, events up to T"), combined;
  stddev from sums of squares; written in the same offline format (same columns, same layout).

Both sides run once on the first day as a warm-up (not measured), then once each, timed wall to
wall and in CPU seconds (the driver's Python plus Spark's JVM, where local mode runs the executors:
on a shared machine wall time swings with other people's load, CPU time is the work done).
checks: every baseline record (one per card and event time) against ours at the same card
and EventTime, cell by cell (doubles to 1e-9 relative; stddev to 1e-6 of the window's mean, since
sums of squares lose digits that Chan's merge keeps); and `peak_executor_memory_mb`: the JVM heap
in use at its peak (the sum of the heap pools' peaks; in local mode the executor is the driver's
JVM) for the daily run and for the same range as one chunk.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

for _key, _value in (("SPARK_LOCAL_IP", "127.0.0.1"), ("PYSPARK_PYTHON", sys.executable)):
    os.environ.setdefault(_key, _value)

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from bench.common import Pair, machine, write_results  # noqa: E402
from bench.proc_cpu import CpuClock  # noqa: E402
from featurestream.backfill.job import BackfillRequest, run_backfill  # noqa: E402
from featurestream.backfill.offline import offline_rows, write_glue_parquet  # noqa: E402
from featurestream.backfill.sources import FileSource  # noqa: E402
from featurestream.config import load_feature_group, load_profile  # noqa: E402
from featurestream.config.feature_group import FeatureGroupSpec  # noqa: E402
from featurestream.config.profile import SparkSpec  # noqa: E402
from featurestream.spark import local_session  # noqa: E402

GROUP = """
entity: {key: card_id, type: string}
event_time: {field: event_time}
source:
  type: kafka
  topic: bench-backfill
  format: json
  schema: {transaction_id: string, card_id: string, merchant_id: string, amount: double, currency: string,
           event_time: timestamp}
transforms:
  - filter: "amount > 0"
windows: {tile: 1m, allowed_lateness: 5m}
features:
  - {name: txn_count, agg: count, windows: [5m, 1h, 24h]}
  - {name: amount_sum, agg: sum, column: amount, windows: [5m, 1h, 24h]}
  - {name: amount_mean, agg: mean, column: amount, windows: [5m, 1h, 24h]}
  - {name: amount_max, agg: max, column: amount, windows: [5m, 1h, 24h]}
  - {name: amount_stddev, agg: stddev_pop, column: amount, windows: [5m, 1h, 24h]}
online_store: {feature_group_name: bench-backfill, ttl: 7d}
"""
WINDOWS = {"5m": 5, "1h": 60, "1d": 1440}  # feature-name suffix → tiles
TILE_MS = 60_000


def generate(folder: Path, events: int, entities: int, start: datetime, days: int, seed: int = 7) -> None:
    """The events as Parquet, one file per day in time order (as an archive by event date holds
    them, so a chunk's read skips the other days' row groups), written by pyarrow."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    start_ms = int(start.timestamp() * 1000)
    per_day = [events // days + (1 if d < events % days else 0) for d in range(days)]
    first = 0
    for day, n in enumerate(per_day):
        ids = np.arange(first, first + n)
        first += n
        amounts = np.round(rng.lognormal(3.5, 1.0, n), 2)
        amounts[rng.random(n) < 0.01] *= -1
        times = np.sort(start_ms + day * 86_400_000 + rng.integers(0, 86_400_000, n))
        table = pa.table({
            "transaction_id": pa.array([f"t{i}" for i in ids]),
            "card_id": pa.array([f"card-{c:06d}" for c in rng.integers(0, entities, n)]),
            "merchant_id": pa.array([f"m-{m}" for m in rng.integers(0, 500, n)]),
            "amount": pa.array(amounts),
            "currency": pa.array(["EUR"] * n),
            "event_time": pa.array(times, type=pa.timestamp("ms", tz="UTC")),
        })
        pq.write_table(table, folder / f"events-{day:03d}.parquet", row_group_size=100_000)


def heap_peak_reset(spark: Any) -> None:
    jvm = spark.sparkContext._jvm
    jvm.java.lang.System.gc()
    for pool in jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans():
        if str(pool.getType().toString()) == "Heap memory":
            pool.resetPeakUsage()


def heap_peak_mb(spark: Any) -> float:
    jvm = spark.sparkContext._jvm
    used = sum(int(pool.getPeakUsage().getUsed()) for pool in jvm.java.lang.management.ManagementFactory
               .getMemoryPoolMXBeans() if str(pool.getType().toString()) == "Heap memory")
    return round(used / 2**20, 1)


def cpu_clock(spark: Any) -> CpuClock:
    return CpuClock(int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()))


def run_ours(spark: Any, spec: FeatureGroupSpec, source: Path, out: Path, work: Path, start: datetime, end: datetime,
             chunk: timedelta) -> tuple[float, float, float, int]:
    """(seconds, CPU seconds, peak heap MB, records) of one backfill into `out`."""
    profile = load_profile("local").model_copy(update={"checkpoint_root": str(work / "checkpoints"),
                                                        "dlq_path": str(work / "dlq")})
    request = BackfillRequest(spec, "bench", profile, FileSource(str(source), "parquet"), start, end,
                              int(chunk.total_seconds() * 1000), str(out))
    heap_peak_reset(spark)
    cpu = cpu_clock(spark)
    began, cpu_began = time.monotonic(), cpu()
    result = run_backfill(spark, request)
    seconds, cpu_seconds = time.monotonic() - began, cpu() - cpu_began
    return seconds, cpu_seconds, heap_peak_mb(spark), result.records


def baseline_frame(spark: Any, spec: FeatureGroupSpec, source: Path, start: datetime, end: datetime) -> Any:
    """The same features at every event with window functions (see the module docstring)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    events = (spark.read.parquet(str(source))
              .where((F.col("event_time") >= F.lit(start)) & (F.col("event_time") < F.lit(end)))
              .where("amount > 0")
              .withColumn("ts", F.unix_millis("event_time"))
              .withColumn("k", F.floor(F.col("ts") / TILE_MS)))
    current = Window.partitionBy("card_id", "k").orderBy("ts").rangeBetween(Window.unboundedPreceding,
                                                                            Window.currentRow)
    columns = [F.col("card_id"), F.col("event_time")]
    amount, square = F.col("amount"), F.col("amount") * F.col("amount")
    for suffix, tiles in WINDOWS.items():
        earlier = Window.partitionBy("card_id").orderBy("k").rangeBetween(-(tiles - 1), -1)
        n = F.count(amount).over(earlier) + F.count(amount).over(current)
        total = F.coalesce(F.sum(amount).over(earlier), F.lit(0.0)) + F.sum(amount).over(current)
        squares = F.coalesce(F.sum(square).over(earlier), F.lit(0.0)) + F.sum(square).over(current)
        mean = total / n
        columns += [
            n.alias(f"txn_count_{suffix}"), total.alias(f"amount_sum_{suffix}"), mean.alias(f"amount_mean_{suffix}"),
            F.greatest(F.max(amount).over(earlier), F.max(amount).over(current)).alias(f"amount_max_{suffix}"),
            F.sqrt(F.greatest(squares / n - mean * mean, F.lit(0.0))).alias(f"amount_stddev_{suffix}"),
        ]
    # One record per card and event time (events at the same millisecond share their values).
    return events.select(*columns).dropDuplicates(["card_id", "event_time"])


def run_baseline(spark: Any, spec: FeatureGroupSpec, source: Path, out: Path, start: datetime,
                 end: datetime) -> tuple[float, float]:
    """(seconds, CPU seconds)."""
    cpu = cpu_clock(spark)
    began, cpu_began = time.monotonic(), cpu()
    # Written as the offline sink writes (no dictionaries, millisecond timestamps): the pair compares
    # the engines, not writer settings either side could take.
    write_glue_parquet(offline_rows(baseline_frame(spark, spec, source, start, end), spec, datetime.now(UTC)),
                       str(out))
    return time.monotonic() - began, cpu() - cpu_began


def compare(spark: Any, ours: Path, baseline: Path) -> dict[str, int]:
    """Every baseline record against ours at the same card and EventTime, cell by cell."""
    from pyspark.sql import functions as F

    features = [f"{agg}_{suffix}" for agg in ("txn_count", "amount_sum", "amount_mean", "amount_max", "amount_stddev")
                for suffix in WINDOWS]
    a = spark.read.parquet(str(ours)).select("card_id", "event_time", *[F.col(f).alias(f"o_{f}") for f in features])
    b = spark.read.parquet(str(baseline)).select("card_id", "event_time", *features)
    joined = b.join(a, ["card_id", "event_time"], "left")
    checks = []
    for name in features:
        got, want = F.col(f"o_{name}"), F.col(name)
        if name.startswith("amount_stddev"):
            scale = F.greatest(F.lit(1.0), F.abs(F.col(f"amount_mean_{name.rsplit('_', 1)[1]}")))
            close = F.abs(got - want) <= F.lit(1e-6) * scale
        elif name.startswith("txn_count"):
            close = got == want
        else:
            close = F.abs(got - want) <= F.lit(1e-9) * F.greatest(F.lit(1.0), F.abs(want))
        checks.append(F.count_if(~F.coalesce(close, got.isNull() & want.isNull())).alias(name))
    row = joined.agg(F.count(F.lit(1)).alias("baseline_records"),
                     F.count_if(F.col("o_txn_count_5m").isNull()).alias("missing_in_ours"), *checks).first()
    values = row.asDict() if row else {}
    return {"baseline_records": int(values.pop("baseline_records", 0)),
            "baseline_records_missing_in_ours": int(values.pop("missing_in_ours", 0)),
            "differing_cells": sum(int(v) for v in values.values())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)  # see "Size" above
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--shuffle-partitions", type=int, default=4)
    parser.add_argument("--driver-memory", default="12g", help="the local session's heap (see Size above)")
    parser.add_argument("--results-dir", type=Path, default=None,
                        help="where backfill.json goes (default bench/results; a small trial run goes elsewhere)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (printed)")
    args = parser.parse_args(argv)
    machine_line = machine()
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=args.days)
    work = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    spark = local_session("bench-backfill", SparkSpec(master="local[2]", shuffle_partitions=args.shuffle_partitions,
                                                      conf={"spark.driver.memory": args.driver_memory}))
    spark.sparkContext.setLogLevel("ERROR")
    try:
        group = work / "bench_backfill.yaml"
        group.write_text(GROUP)
        spec = load_feature_group(group)
        source = work / "events"
        generate(source, args.events, args.entities, start, args.days)
        print(f"generated {args.events:,} events of {args.entities:,} cards over {args.days} days", flush=True)
        first_day = start + timedelta(days=1)
        print("warm-up on the first day (not measured)", flush=True)
        run_ours(spark, spec, source, work / "warm-ours", work / "warm-ours-work", start, first_day, timedelta(days=1))
        run_baseline(spark, spec, source, work / "warm-base", start, first_day)
        ours_s, ours_cpu, daily_mb, records = run_ours(spark, spec, source, work / "ours", work / "ours-work", start,
                                                       end, timedelta(days=1))
        print(f"  ours (daily chunks): {ours_s:.1f} s, {ours_cpu:.1f} CPU s, {records:,} records, "
              f"peak heap {daily_mb} MB", flush=True)
        base_s, base_cpu = run_baseline(spark, spec, source, work / "baseline", start, end)
        print(f"  baseline (window functions): {base_s:.1f} s, {base_cpu:.1f} CPU s", flush=True)
        one_s, one_cpu, one_mb, _ = run_ours(spark, spec, source, work / "ours-one", work / "ours-one-work", start,
                                             end, timedelta(days=args.days))
        print(f"  ours (one chunk): {one_s:.1f} s, {one_cpu:.1f} CPU s, peak heap {one_mb} MB", flush=True)
        checks: dict[str, Any] = compare(spark, work / "ours", work / "baseline")
    finally:
        spark.stop()
        if args.keep:
            print(f"work folder: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    checks.update({
        "ours_records_including_decay": records,
        "peak_executor_memory_mb": {"daily_chunks": daily_mb, "one_chunk": one_mb},
        "ours_one_chunk_seconds": round(one_s, 3),
        "ours_one_chunk_cpu_seconds": round(one_cpu, 3),
        "tolerances": "doubles 1e-9 relative; stddev 1e-6 of the window mean (sums of squares vs Chan's merge)",
    })
    params = {"events": args.events, "entities": args.entities, "days": args.days, "chunk": "1d",
              "master": "local[2]", "shuffle_partitions": args.shuffle_partitions,
              "driver_memory": args.driver_memory, "tile": "1m",
              "windows": ["5m", "1h", "24h"], "aggregations": ["count", "sum", "mean", "max", "stddev_pop"],
              "filtered_share": 0.01}
    pairs = [Pair("seconds: backfill (daily chunks) vs Spark window functions (rangeBetween), same input and output",
                  ours_s, base_s, "seconds", higher_is_better=False),
             Pair("CPU seconds: backfill (daily chunks) vs Spark window functions (rangeBetween), same input and "
                  "output", ours_cpu, base_cpu, "CPU seconds", higher_is_better=False)]
    extra = {"results_dir": args.results_dir} if args.results_dir else {}
    write_results("backfill", params, pairs, checks, machine_description=machine_line, **extra)
    return 0 if checks["differing_cells"] == 0 and checks["baseline_records_missing_in_ours"] == 0 else 3


if __name__ == "__main__":
    sys.exit(main())
