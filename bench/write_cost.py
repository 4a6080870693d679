"""CPU per record written to the online store, on both sides: our writer and the emulator.

Every benchmark of the shipped job writes its records through `OnlineStoreSink` to the Feature
Store emulator, on the same 2 cores as Spark, so the CPU each record costs the writer and the
emulator is part of every figure. This writes `--records` records (one per entity, bench-stream's
group: the key, EventTime as a timestamp and the 15 features, 3 windows x count/sum/mean/max/
stddev) through the sink's driver path (`OnlineStoreSink.plan(on_driver=True)` and the partition
writer over Arrow batches, as `write_batch` runs it for a small micro-batch, without Spark's
collect) to a private emulator, and beside it the bare boto3 loop of bench-stream's sparse pair
(BatchWriteRecord of 25 from 8 threads, its records built before its clock starts) to the same
emulator. Interleaved repeats, each into fresh entities; medians. It reports per side:

- writer CPU s (this process: record building, thread pool, boto3) and emulator CPU s (its
  process), and per record in microseconds;
- records/s (wall, load-dependent);
- the writer's record building alone (Arrow rows -> request JSON), measured apart.

`--py-spy` (py-spy on PATH) also samples both processes during one extra run of ours and prints
the functions with the most samples while holding the GIL (self and inclusive; work in C that
releases the GIL, such as SQLite's, is not seen), raw stacks kept in the results dir.

    .venv/bin/python bench/write_cost.py --results-dir /tmp/write-cost             # 50k records, 3 repeats
    .venv/bin/python bench/write_cost.py --results-dir /tmp/x --records 5000 --repeats 1 --py-spy

Writes `<results-dir>/write_cost.json` (never bench/results: a tool to decide with, not a
`make bench-*` target). Run the same file from two checkouts to compare code versions: the
emulator is started from the checkout the tool is in.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

for _key, _value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                     ("AWS_REGION", "us-east-1"), ("AWS_DEFAULT_REGION", "us-east-1")):
    os.environ.setdefault(_key, _value)

import boto3  # noqa: E402
import pyarrow as pa  # noqa: E402

from bench.common import Pair, machine, write_results  # noqa: E402
from bench.proc_cpu import tree_cpu_seconds, used_between  # noqa: E402
from bench.shipped_job import bare_batch_write_loop, online_only  # noqa: E402
from bench.stream_bench import GROUP  # noqa: E402
from featurestream.config import load_feature_group  # noqa: E402
from featurestream.config.feature_group import FeatureGroupSpec  # noqa: E402
from featurestream.connectors.online_store import OnlineStoreSink, OnlineStoreTarget  # noqa: E402
from featurestream.connectors.provisioning import ensure_feature_group  # noqa: E402
from featurestream.connectors.writer.records import records_from_batch  # noqa: E402
from featurestream.connectors.writer.settings import WriterSettings  # noqa: E402
from featurestream.connectors.writer.task import write_partition  # noqa: E402
from featurestream.dev.feature_store import EmulatorProcess  # noqa: E402
from featurestream.engine.aggregation import feature_columns  # noqa: E402

ROWS_PER_BATCH = 10_000  # Arrow batch size of Spark's collect (maxRecordsPerBatch)


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def _sys_cpu(pid: int | None = None) -> float:
    """System CPU seconds of this process or of `pid` (syscalls: sockets, futexes, SQLite's I/O)."""
    if pid is None:
        return os.times().system
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[12]) / os.sysconf("SC_CLK_TCK")


def make_group(work: Path) -> FeatureGroupSpec:
    """bench-stream's group, as a fresh online feature group of the emulator."""
    path = work / "write_cost_cards.yaml"
    path.write_text(GROUP.replace("TOPIC", "unused").replace("FGNAME", f"write-cost-{uuid.uuid4().hex[:6]}"))
    spec = load_feature_group(path)
    ensure_feature_group(boto3.client("sagemaker"), spec, online_only())
    return spec


def make_batches(spec: FeatureGroupSpec, records: int, prefix: str) -> list[pa.RecordBatch]:
    """The rows the engine hands the sink: key string, EventTime timestamp, count long, the rest doubles."""
    import numpy as np

    rng = np.random.default_rng(len(prefix))
    start_us = (int(time.time()) - 3600) * 1_000_000
    batches = []
    for lo in range(0, records, ROWS_PER_BATCH):
        n = min(ROWS_PER_BATCH, records - lo)
        columns: dict[str, pa.Array] = {
            spec.entity.key: pa.array([f"{prefix}-{i}" for i in range(lo, lo + n)]),
            spec.event_time.field: pa.array(start_us + rng.integers(0, 3_600_000_000, n), pa.timestamp("us", "UTC")),
        }
        for name in feature_columns(spec):
            if name.startswith("txn_count"):
                columns[name] = pa.array(rng.integers(1, 50, n), pa.int64())
            else:
                columns[name] = pa.array(rng.random(n) * 1000.0, pa.float64())
        batches.append(pa.RecordBatch.from_pydict(columns))
    return batches


def make_sink(spec: FeatureGroupSpec, endpoint: str) -> OnlineStoreSink:
    profile = online_only()
    store = profile.feature_store.model_copy(update={"runtime_endpoint_url": endpoint})
    target = OnlineStoreTarget(
        feature_group_name=spec.online_store.feature_group_name, record_identifier=spec.entity.key,
        event_time_feature=spec.event_time.field, feature_names=tuple(feature_columns(spec)),
        region=store.region, already_unique=True,
    )
    return OnlineStoreSink(target, WriterSettings.from_spec(store, None))


def run_ours(sink: OnlineStoreSink, batches: list[pa.RecordBatch], emulator_pid: int) -> dict[str, float]:
    """The sink's driver path over `batches`: CPU of this process and of the emulator, wall seconds."""
    plan = sink.plan(None, time.time() + sink.settings.batch_timeout_s, on_driver=True)  # type: ignore[arg-type]
    sys_before = _sys_cpu(), _sys_cpu(emulator_pid)
    emu_before, cpu_before, started = tree_cpu_seconds(emulator_pid), _cpu(), time.perf_counter()
    out = list(write_partition(plan, iter(batches)))
    seconds, writer_cpu = time.perf_counter() - started, _cpu() - cpu_before
    emulator_cpu = used_between(emu_before, tree_cpu_seconds(emulator_pid))
    sys_after = _sys_cpu(), _sys_cpu(emulator_pid)
    rows = [row for batch in out for row in batch.to_pylist()]
    if any(r["kind"] == "dlq" for r in rows):
        raise RuntimeError(f"ours: records dead-lettered: {[r for r in rows if r['kind'] == 'dlq'][:1]}")
    return {"seconds": seconds, "writer_cpu_s": writer_cpu, "emulator_cpu_s": emulator_cpu,
            "writer_sys_cpu_s": sys_after[0] - sys_before[0], "emulator_sys_cpu_s": sys_after[1] - sys_before[1]}


def run_bare(spec: FeatureGroupSpec, records: int, emulator_pid: int) -> dict[str, float]:
    sys_before = _sys_cpu(), _sys_cpu(emulator_pid)
    emu_before, cpu_before = tree_cpu_seconds(emulator_pid), _cpu()
    seconds = bare_batch_write_loop(spec.online_store.feature_group_name, records, feature_columns(spec))
    writer_cpu = _cpu() - cpu_before
    return {"seconds": seconds, "writer_cpu_s": writer_cpu,
            "emulator_cpu_s": used_between(emu_before, tree_cpu_seconds(emulator_pid)),
            "writer_sys_cpu_s": _sys_cpu() - sys_before[0],
            "emulator_sys_cpu_s": _sys_cpu(emulator_pid) - sys_before[1]}


def build_cpu(spec: FeatureGroupSpec, batches: list[pa.RecordBatch]) -> float:
    """CPU seconds of the writer's record building alone (Arrow rows -> request JSON texts)."""
    started = _cpu()
    for batch in batches:
        records_from_batch(batch, spec.entity.key, spec.event_time.field, feature_columns(spec))
    return _cpu() - started


def _sample(pids: dict[str, int], out_dir: Path) -> list[tuple[str, subprocess.Popen[bytes], Path]]:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    samplers = []
    for name, pid in pids.items():
        path = out_dir / f"write_cost_{name}.stacks.txt"
        cmd = [py_spy, "record", "--pid", str(pid), "--rate", "250", "--format", "raw", "--output", str(path),
               "--nonblocking", "--gil"]
        samplers.append((name, subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), path))
    time.sleep(1.0)  # py-spy attaches
    return samplers


def _summary(path: Path, top: int = 14) -> list[str]:
    """Top functions by self samples and by inclusive samples, from py-spy's raw (collapsed) stacks."""
    self_samples: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f.split(" (", 1)[0] + " " + f.rsplit("/", 1)[-1].rstrip(")") for f in stack.split(";")]
        if any(f.startswith(("select ", "poll ", "wait ", "_wait_for_tstate_lock", "accept ")) for f in frames[-1:]):
            continue  # idle threads
        total += n
        self_samples[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{path.name}: {total} busy samples"]
    lines += [f"  self {100 * n / max(1, total):5.1f}%  {f}" for f, n in self_samples.most_common(top)]
    lines += [f"  incl {100 * n / max(1, total):5.1f}%  {f}" for f, n in inclusive.most_common(top * 2)]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--results-dir", type=Path, required=True)
    parser.add_argument("--py-spy", action="store_true", help="also sample one run of ours with py-spy")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="write-cost-"))
    # The emulator of this checkout, whatever package the virtualenv points at.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    emulator = EmulatorProcess(work / "emulator", env=env).start()
    os.environ["AWS_ENDPOINT_URL"] = emulator.url
    try:
        assert emulator.pid is not None
        spec = make_group(work)
        sink = make_sink(spec, emulator.url)
        # Warm both sides (boto3 client, SQLite pages, the emulator's threads) outside the clock.
        run_ours(sink, make_batches(spec, min(5_000, args.records), "warm"), emulator.pid)
        run_bare(spec, min(5_000, args.records), emulator.pid)
        ours: list[dict[str, float]] = []
        bare: list[dict[str, float]] = []
        builds: list[float] = []
        for repeat in range(args.repeats):
            batches = make_batches(spec, args.records, f"r{repeat}")
            builds.append(build_cpu(spec, batches))
            # The order alternates so that neither side always runs on a warmer emulator.
            for side in ("ours", "bare") if repeat % 2 == 0 else ("bare", "ours"):
                if side == "ours":
                    ours.append(run_ours(sink, batches, emulator.pid))
                else:
                    bare.append(run_bare(spec, args.records, emulator.pid))
            print(f"  repeat {repeat}: ours {_fmt(ours[-1], args.records)} | bare {_fmt(bare[-1], args.records)}",
                  flush=True)
        profile_lines: list[str] = []
        if args.py_spy:
            args.results_dir.mkdir(parents=True, exist_ok=True)
            batches = make_batches(spec, args.records, "spy")
            samplers = _sample({"writer": os.getpid(), "emulator": emulator.pid}, args.results_dir)
            run_ours(sink, batches, emulator.pid)
            for _name, proc, path in samplers:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=60)
                if path.exists():
                    profile_lines += _summary(path)
            print("\n".join(profile_lines))
    finally:
        emulator.stop()
        shutil.rmtree(work, ignore_errors=True)

    n = args.records

    def med(runs: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    per_record = {side: {key: med(runs, key) / n * 1e6 for key in ("writer_cpu_s", "emulator_cpu_s")}
                  for side, runs in (("ours", ours), ("bare", bare))}
    pairs = [
        Pair("writer CPU per record vs bare boto3 loop (client side)", per_record["ours"]["writer_cpu_s"],
             per_record["bare"]["writer_cpu_s"], "us/record", higher_is_better=False),
        Pair("emulator CPU per record, ours' requests vs the bare loop's", per_record["ours"]["emulator_cpu_s"],
             per_record["bare"]["emulator_cpu_s"], "us/record", higher_is_better=False),
        Pair("records/s vs bare boto3 loop (wall, load-dependent)", n / med(ours, "seconds"),
             n / med(bare, "seconds"), "records/s"),
    ]
    checks = {
        "ours_writer_cpu_s_median": round(med(ours, "writer_cpu_s"), 3),
        "ours_emulator_cpu_s_median": round(med(ours, "emulator_cpu_s"), 3),
        "ours_records_per_s_median": round(n / med(ours, "seconds"), 1),
        "ours_writer_sys_cpu_s_median": round(med(ours, "writer_sys_cpu_s"), 3),
        "ours_emulator_sys_cpu_s_median": round(med(ours, "emulator_sys_cpu_s"), 3),
        "ours_record_building_cpu_us_per_record": round(statistics.median(builds) / n * 1e6, 2),
        "bare_writer_cpu_s_median": round(med(bare, "writer_cpu_s"), 3),
        "bare_emulator_cpu_s_median": round(med(bare, "emulator_cpu_s"), 3),
        "runs": {"ours": ours, "bare": bare},
        "load_avg_at_end": round(os.getloadavg()[0], 1) if hasattr(os, "getloadavg") else None,
    }
    if profile_lines:
        checks["py_spy"] = profile_lines
    params = {"records": n, "repeats": args.repeats, "features": len(feature_columns(spec)),
              "rows_per_arrow_batch": ROWS_PER_BATCH, "threads_per_partition": sink.settings.threads_per_partition}
    write_results("write_cost", params, pairs, checks, machine_description=machine(), results_dir=args.results_dir)
    return 0


def _fmt(run: dict[str, float], records: int) -> str:
    return (f"{records / run['seconds']:,.0f} rec/s, writer {run['writer_cpu_s'] / records * 1e6:.0f} us/rec, "
            f"(sys {run['writer_sys_cpu_s'] / records * 1e6:.0f}), emulator {run['emulator_cpu_s'] / records * 1e6:.0f}"
            f" us/rec (sys {run['emulator_sys_cpu_s'] / records * 1e6:.0f})")


if __name__ == "__main__":
    sys.exit(main())
