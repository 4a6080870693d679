"""Offline-store compaction vs a plain Spark read→write copy of the same small files.

    make bench-compaction          # → bench/results/compaction.json

Input: ~10,000 small uncompressed Parquet files in SageMaker's Glue layout and schema (as AWS
writes them: year=/month=/day=/hour= folders, the group's features plus write_time,
api_invocation_time and is_deleted), written directly with pyarrow, with re-deliveries (exact
duplicate files), superseding writes of the same (id, EventTime) and delete markers. Both sides run
in one local[2] session, each warmed up once at full size, then alternating, best of `--rounds`:

* ours: `compact_feature_group` end to end (listing, ledger, dedup, sort, sizing, and the commit of
  an Apache Iceberg table in the local profile's catalog: JDBC on the stack's PostgreSQL, which
  the bench starts if it is not up);
* baseline: `spark.read.parquet(root).repartition(n).write.parquet(out)` with n = our file count.

Checks: file reduction (goal: at least 100 times fewer files), the compacted row count against
DuckDB over the raw files, an incremental run over 1% new files, and a no-op run.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import Pair, write_results  # noqa: E402
from bench.proc_cpu import CpuClock  # noqa: E402
from featurestream.compaction import (  # noqa: E402
    CompactionSettings,
    FeatureGroupTarget,
    TableRef,
    compact_feature_group,
)
from featurestream.compaction.schema import offline_schema  # noqa: E402
from featurestream.connectors.offline_store import StoreUri  # noqa: E402

FEATURES = [
    {"FeatureName": "card_id", "FeatureType": "String"},
    {"FeatureName": "event_time", "FeatureType": "String"},
    {"FeatureName": "txn_count_5m", "FeatureType": "Integral"},
    {"FeatureName": "amount_sum_5m", "FeatureType": "Fractional"},
    {"FeatureName": "merchant", "FeatureType": "String"},
]
# The generated store covers the 30 days before today (never a fixed date: an offline store holds
# recent hours, and the cached source folder is named after its first day so a new day makes a new one).
START = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=30)
TS = pa.timestamp("ms", tz="UTC")
SCHEMA = pa.schema([("card_id", pa.string()), ("event_time", pa.string()), ("txn_count_5m", pa.int64()),
                    ("amount_sum_5m", pa.float64()), ("merchant", pa.string()), ("write_time", TS),
                    ("api_invocation_time", TS), ("is_deleted", pa.bool_())])


def _table(rng: random.Random, hour: datetime, rows: int, entities: int, write_time: datetime) -> pa.Table:
    ids, times, counts, sums, merchants, apis, deleted = [], [], [], [], [], [], []
    for _ in range(rows):
        moment = hour + timedelta(seconds=rng.randrange(3600))
        ids.append(f"card-{rng.randrange(entities):06d}")
        times.append(moment.strftime("%Y-%m-%dT%H:%M:%SZ"))
        counts.append(rng.randrange(1, 40))
        sums.append(round(rng.uniform(1, 5000), 2))
        merchants.append(f"m-{rng.randrange(500):04d}")
        apis.append(moment + timedelta(milliseconds=rng.randrange(50, 900)))
        deleted.append(rng.random() < 0.01)
    return pa.table([ids, times, counts, sums, merchants, [write_time] * rows, apis, deleted], schema=SCHEMA)


def generate(root: Path, files: int, rows_per_file: int, days: int, entities: int, seed: int) -> int:
    """Write the offline store; returns the file count. ~4% of files are re-deliveries."""
    rng = random.Random(seed)
    hours = days * 24
    per_hour = max(1, files // hours)
    written = 0
    for h in range(hours):
        hour = START + timedelta(hours=h)
        folder = root / hour.strftime("year=%Y/month=%m/day=%d/hour=%H")
        folder.mkdir(parents=True, exist_ok=True)
        previous: pa.Table | None = None
        for i in range(per_hour if h < hours - 1 else files - written):
            write_time = hour + timedelta(minutes=15 + i)
            if previous is not None and rng.random() < 0.04:
                table = previous  # a re-delivered file: exact duplicate rows
            elif previous is not None and rng.random() < 0.10:
                # Superseding writes: the same (card, EventTime) with new values and a later write_time.
                table = previous.set_column(2, "txn_count_5m", pa.array([c + 1 for c in previous["txn_count_5m"]
                                                                          .to_pylist()], pa.int64()))
                table = table.set_column(5, "write_time", pa.array([write_time] * table.num_rows, TS))
            else:
                table = _table(rng, hour, rows_per_file, entities, write_time)
            previous = table
            name = f"{write_time:%Y%m%dT%H%M%SZ}_{rng.getrandbits(64):016x}.parquet"
            pq.write_table(table, folder / name, compression="none")
            written += 1
    return written


def source_dir(workdir: Path, args: argparse.Namespace) -> Path:
    """Generated once per parameter set and reused (the `.complete` marker says it is whole)."""
    folder = workdir / f"source-{START:%Y%m%d}-{args.files}x{args.rows_per_file}-{args.days}d-{args.seed}"
    data = folder / "123456789012/sagemaker/us-east-1/offline-store/card-activity-bench-1790000000/data"
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        started = time.monotonic()
        count = generate(data, args.files, args.rows_per_file, args.days, args.entities, args.seed)
        (folder / ".complete").write_text(str(count))
        print(f"generated {count} files in {time.monotonic() - started:.1f}s under {data}")
    return data


def duckdb_kept_rows(files: list[Path]) -> int:
    """Independent count of the compacted rows (documented rules, deletes kept)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    listing = ", ".join(f"'{f}'" for f in files)
    return int(con.execute(
        "SELECT count(*) FROM (SELECT DISTINCT card_id, CAST(event_time AS TIMESTAMPTZ) "
        f"FROM read_parquet([{listing}], hive_partitioning = false))").fetchone()[0])  # type: ignore[index]


def visible_parquet(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.parquet")
                  if not any(s.startswith((".", "_")) for s in p.relative_to(root).parts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rows-per-file", type=int, default=60)
    parser.add_argument("--days", type=int, default=7)
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--target-file-size", default="128MB")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".state" / "bench" / "compaction")
    args = parser.parse_args()

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from featurestream import iceberg
    from featurestream.config import load_profile
    from featurestream.config.compaction import parse_size
    from featurestream.config.profile import SparkSpec
    from featurestream.dev.stack import manager
    from featurestream.spark import local_session

    source = source_dir(args.workdir, args)
    runs = args.workdir / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    raw_files = visible_parquet(source)
    target_bytes = parse_size(args.target_file_size)
    catalog_was_up = any(s.healthy for s in manager.status(["postgres"]))
    manager.up(["postgres"])
    catalog = iceberg.from_profile(load_profile("local"))
    spark = local_session("bench-compaction", SparkSpec(master="local[2]", shuffle_partitions=4))
    spark.sparkContext.setLogLevel("ERROR")
    iceberg.configure_session(spark, catalog)
    settings = CompactionSettings(target_file_bytes=target_bytes, gc_grace_s=0.0)
    schema = offline_schema(FEATURES)
    namespace = f"bench_compaction_{os.getpid()}"
    tables: list[TableRef] = []

    def target(output: Path, data: Path = source) -> FeatureGroupTarget:
        # One table per output folder; dropped (not purged: the folders go with `runs`) at the end.
        ref = TableRef(catalog.name, namespace, output.name.replace("-", "_"), StoreUri.parse(output))
        if ref not in tables:
            tables.append(ref)
        return FeatureGroupTarget("card-activity-bench", StoreUri.parse(data), StoreUri.parse(output),
                                  "card_id", "event_time", schema, ref)

    cpu = CpuClock(int(spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()))  # type: ignore[union-attr]

    def copy(output: Path, data: Path, partitions: int) -> float:
        started = time.monotonic()
        spark.read.parquet(str(data)).repartition(partitions).write.parquet(str(output))
        return time.monotonic() - started

    # Warm the JVM (class loading, JIT) with one full-size run of each side, not measured: the
    # first run of a fresh JVM is 2-3x slower whichever side goes first.
    warm = compact_feature_group(spark, target(runs / "warm-ours"), settings)
    copy(runs / "warm-copy", source, warm.files_out)

    ours_s: list[float] = []
    copy_s: list[float] = []
    ours_cpu: list[float] = []
    copy_cpu: list[float] = []
    summary = None
    for round_no in range(args.rounds):
        before = cpu()
        summary = compact_feature_group(spark, target(runs / f"ours-{round_no}"), settings)
        ours_cpu.append(cpu() - before)
        ours_s.append(summary.seconds)
        before = cpu()
        copy_s.append(copy(runs / f"copy-{round_no}", source, summary.files_out))
        copy_cpu.append(cpu() - before)
        print(f"round {round_no}: ours {ours_s[-1]:.1f}s ({ours_cpu[-1]:.1f} CPU s, {summary.files_out} files), "
              f"copy {copy_s[-1]:.1f}s ({copy_cpu[-1]:.1f} CPU s)")
    assert summary is not None

    # Incremental: after a full run, 1% more files land in the last hour; then a run with nothing new.
    extra = runs / "incremental-source"
    shutil.copytree(source, extra)
    incremental_out = runs / "incremental"
    compact_feature_group(spark, target(incremental_out, extra), settings)
    rng = random.Random(args.seed + 1)
    hour = START + timedelta(days=args.days - 1, hours=23)
    late = extra / hour.strftime("year=%Y/month=%m/day=%d/hour=%H")
    for i in range(args.files // 100):
        table = _table(rng, hour, args.rows_per_file, args.entities, hour + timedelta(hours=1, seconds=i))
        pq.write_table(table, late / f"late_{i:05d}.parquet", compression="none")
    incremental = compact_feature_group(spark, target(incremental_out, extra), settings)
    noop = compact_feature_group(spark, target(incremental_out, extra), settings)

    expected_rows = duckdb_kept_rows(raw_files)
    out_files = visible_parquet(runs / "ours-0" / "data")
    mean_mb = sum(p.stat().st_size for p in out_files) / len(out_files) / 1024**2
    rows = summary.rows_in
    best_ours, best_copy = min(ours_s), min(copy_s)
    pairs = [
        Pair("vs plain read→write copy", rows / best_ours, rows / best_copy, "rows/s", True),
        Pair("vs plain read→write copy, CPU seconds (JVM + driver)", min(ours_cpu), min(copy_cpu), "CPU s", False),
    ]
    checks = {
        "file_reduction": round(summary.files_in / summary.files_out, 1),
        "files_in": summary.files_in,
        "files_out": summary.files_out,
        "bytes_in": summary.bytes_in,
        "bytes_out": summary.bytes_out,
        "rows_in": rows,
        "rows_out": summary.rows_out,
        "rows_out_matches_duckdb": summary.rows_out == expected_rows,
        "duplicates_removed": summary.duplicates_removed,
        "superseded_removed": summary.superseded_removed,
        "mean_output_file_mb": round(mean_mb, 2),
        "compaction_seconds_best": round(best_ours, 2),
        "copy_seconds_best": round(best_copy, 2),
        "compaction_seconds_all": [round(s, 2) for s in ours_s],
        "copy_seconds_all": [round(s, 2) for s in copy_s],
        "compaction_cpu_seconds_all": [round(s, 2) for s in ours_cpu],
        "copy_cpu_seconds_all": [round(s, 2) for s in copy_cpu],
        "incremental_new_files": incremental.files_in,
        "incremental_partitions_rewritten": incremental.partitions_rewritten,
        "incremental_seconds": round(incremental.seconds, 2),
        "noop_seconds": round(noop.seconds, 3),
        "throughput_goal_met": pairs[0].ratio >= 0.8,
        "file_reduction_goal_met": summary.files_in / summary.files_out >= 100,
    }
    params = {"files": args.files, "rows_per_file": args.rows_per_file, "days": args.days,
              "entities": args.entities, "rounds": args.rounds, "target_file_size": args.target_file_size,
              "source_compression": "none", "output_compression": settings.compression, "spark": "local[2]",
              "output_format": "iceberg, jdbc catalog"}
    write_results("compaction", params, pairs, checks)
    for ref in tables:
        spark.sql(f"DROP TABLE IF EXISTS {ref.identifier}")
    spark.sql(f"DROP NAMESPACE IF EXISTS `{catalog.name}`.`{namespace}`")
    spark.stop()
    if not catalog_was_up:
        manager.down(["postgres"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
