"""Freshness of the shipped job, measured from outside as a user sees it, beside the job's own metric.

One run, `local[2]`, the stack's Kafka and a private Feature Store emulator:
1. maximum sustainable rate: the job (`featurestream stream --available-now`, a subprocess) on a
   backlog of `--backlog` events over `--entities` entities; its events/s from its progress lines;
2. the job runs continuously (a subprocess, the local profile with a `--trigger` trigger, metrics
   endpoint on) under a steady background load at `--load` (0.5) of that rate, events timed now;
3. a probe sends an event for a brand-new entity every `--probe-every` s, on that schedule whatever
   the earlier probes do, and polls the outstanding ones with BatchGetRecord until each appears:
   freshness = when it appeared - the event's time (= when it was sent);
   `--warmup` s after the first probe appeared (the job is up), `--probes` probes are kept:
   p50/p90/p99/max;
4. at the end the job's own `featurestream_freshness_quantile_seconds` (p50, p99) is scraped from
   its endpoint, and set beside the probe's over the same period: the job's quantile window
   (`metrics.freshness_window`) is set to 80% of the probing time, so it never reaches back into
   the start-up's catch-up batches (their events waited for the job to start, ages of tens of
   seconds: with a window as long as the run they made the job's p99 3x the probe's), and the
   probe side is the probes that appeared in that window. A check also gives Prometheus'
   `histogram_quantile` over the increase of `featurestream_freshness_seconds` between the first
   and the last probe.

Pairs: the job's own p50 and p99 vs the probe's (ratio within 0.8-1.2 = they agree within 20%).
Checks: the probe's quantiles, the goal (p99 <= 1.5 s), the rates.

    .venv/bin/python bench/freshness_bench.py                      # make bench-freshness
    .venv/bin/python bench/freshness_bench.py --small --results-dir /tmp/x   # a quick check that it runs
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

for _key, _value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                     ("AWS_REGION", "us-east-1"), ("AWS_DEFAULT_REGION", "us-east-1"),
                     ("SPARK_LOCAL_IP", "127.0.0.1"), ("PYSPARK_PYTHON", sys.executable),
                     ("PYSPARK_DRIVER_PYTHON", sys.executable)):
    os.environ.setdefault(_key, _value)

import boto3  # noqa: E402
import yaml  # noqa: E402

from bench.common import Pair, machine, write_results  # noqa: E402
from bench.shipped_job import online_only, write_profile  # noqa: E402
from featurestream.config import load_feature_group  # noqa: E402
from featurestream.connectors.provisioning import ensure_feature_group  # noqa: E402
from featurestream.dev.feature_store import EmulatorProcess  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GROUP = """
entity: {key: card_id, type: string}
event_time: {field: event_time}
source:
  type: kafka
  topic: TOPIC
  format: json
  schema: {transaction_id: string, card_id: string, amount: double, event_time: timestamp}
windows: {tile: 1m, allowed_lateness: 1m}
features:
  - {name: txn_count, agg: count, windows: [5m, 1h]}
  - {name: amount_sum, agg: sum, column: amount, windows: [5m, 1h]}
online_store: {feature_group_name: FGNAME, ttl: 7d}
"""
GOAL_P99_S = 1.5


def _stamp(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _event(card: str, n: int, at: float | None = None) -> bytes:
    return json.dumps({"transaction_id": f"t{n}", "card_id": card, "amount": 1.5,
                       "event_time": _stamp(time.time() if at is None else at)}).encode()


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _job(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "featurestream.cli", "stream", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=log.open("wb"), start_new_session=True)


def _progress(log: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log.read_text(errors="replace").splitlines() if line.startswith("{")]
    return [e for e in lines if e.get("event") == "batch_progress"]


def _median(values: list[float]) -> float | None:
    return round(sorted(values)[len(values) // 2], 3) if values else None


def batch_breakdown(log: Path) -> dict[str, Any]:
    """Medians over the job's micro-batches with data: where a batch's time went (seconds)."""
    lines = [json.loads(line) for line in log.read_text(errors="replace").splitlines() if line.startswith("{")]
    progress = [e for e in lines if e.get("event") == "batch_progress" and e.get("input_rows", 0) > 0]
    engine = [e for e in lines if e.get("event") == "engine_batch" and e.get("records", 0) > 0]
    writes = [e for e in lines if e.get("event") == "online_store_batch"]
    out: dict[str, Any] = {"batches": len(progress),
                           "input_rows": _median([e["input_rows"] for e in progress]),
                           "trigger_s": _median([e["duration_s"] for e in progress])}
    for phase in sorted({k for e in progress for k in e.get("phases_s", {})}):
        out[f"spark_{phase}_s"] = _median([e["phases_s"].get(phase, 0.0) for e in progress])
    out["spark_state_commit_s"] = _median([e.get("state_commit_s", 0.0) for e in progress])
    for lap in sorted({k for e in engine for k in e.get("seconds", {})}):
        out[f"body_{lap}"] = _median([e["seconds"].get(lap, 0.0) for e in engine])
    out["writer_seconds"] = _median([e["seconds"] for e in writes])
    out["writer_tasks_s"] = _median([e["write_seconds"] for e in writes if e.get("write_seconds") is not None])
    out["writer_where"] = sorted({str(e.get("where", "executors")) for e in writes})
    return out


def max_rate(group_file: Path, profile_file: Path, work: Path, producer: Any, topic: str, backlog: int,
             entities: int) -> float:
    """Events/s of the job on a backlog (the most it sustains on this shape)."""
    for n in range(backlog):
        producer.send(topic, _event(f"card-{random.randrange(entities)}", n))
    producer.flush()
    log = work / "max-rate.log"
    code = _job(["--feature-group", str(group_file), "--env", str(profile_file), "--available-now"], log).wait()
    if code != 0:
        raise RuntimeError(f"the backlog run exited {code}: {log}")
    batches = [b for b in _progress(log) if b["input_rows"] > 0]
    rows = sum(b["input_rows"] for b in batches)
    seconds = sum(b["duration_s"] for b in batches)
    print(f"max sustainable: {rows:,} events in {seconds:.1f}s of batches -> {rows / seconds:,.0f}/s", flush=True)
    return rows / seconds


def scrape(port: int) -> tuple[dict[str, float], dict[float, float]]:
    """The job's freshness quantile gauges ({"0.5": s, ...}) and its cumulative histogram ({le: events})."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    quantiles, buckets = {}, {}
    for line in text.splitlines():
        if line.startswith("featurestream_freshness_quantile_seconds{"):
            q = line.split('quantile="', 1)[1].split('"', 1)[0]
            quantiles[q] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("featurestream_freshness_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(le)] = float(line.rsplit(" ", 1)[1])
    return quantiles, buckets


def histogram_quantile(q: float, before: dict[float, float], after: dict[float, float]) -> float | None:
    """Prometheus' histogram_quantile over the events between two scrapes (linear within a bucket)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return None
    target, lower, below = q * counts[-1], 0.0, 0.0
    for bound, running in zip(bounds, counts, strict=True):
        if running >= target:
            if bound == float("inf"):
                return lower
            inside = running - below
            return lower + (bound - lower) * ((target - below) / inside if inside else 1.0)
        lower, below = bound, running
    return lower


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trigger", default="500 milliseconds")
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--backlog", type=int, default=60_000)
    parser.add_argument("--load", type=float, default=0.5, help="background load, a fraction of the maximum rate")
    parser.add_argument("--rate", type=float, default=None,
                        help="background events/s as given (skips the maximum-rate run; for trials)")
    parser.add_argument("--probe-every", type=float, default=0.25)
    parser.add_argument("--probes", type=int, default=400)
    parser.add_argument("--warmup", type=float, default=30.0)
    parser.add_argument("--results-dir", type=Path, default=None)
    parser.add_argument("--driver-write-max-records", type=int, default=None,
                        help="the profile's feature_store.driver_write_max_records (0: every write on the executors, "
                             "as before); default: the profile's default")
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                        help="extra Spark settings of the job's profile (spark.conf), to compare")
    parser.add_argument("--small", action="store_true", help="a quick check that it runs (figures mean nothing)")
    args = parser.parse_args(argv)
    if args.small:
        args.backlog, args.probes, args.warmup, args.entities = 3_000, 12, 8.0, 2_000
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic

    from featurestream.dev.stack import manager

    machine_line = machine()
    before = {s.name for s in manager.status() if s.healthy}
    manager.up(["kafka"])
    work = Path(tempfile.mkdtemp(prefix="bench-freshness-"))
    emulator = EmulatorProcess(work / "emulator", flush_interval_s=3600).start()
    os.environ["AWS_ENDPOINT_URL_SAGEMAKER"] = emulator.url
    os.environ["AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME"] = emulator.url
    bootstrap = manager.env()["FEATURESTREAM_KAFKA_BOOTSTRAP"]
    job: subprocess.Popen[bytes] | None = None
    stop = threading.Event()
    try:
        suffix = uuid.uuid4().hex[:8]
        topic, warm_topic = f"freshness-{suffix}", f"freshness-{suffix}-backlog"
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        admin.create_topics([NewTopic(t, num_partitions=2, replication_factor=1) for t in (topic, warm_topic)])
        admin.close()
        producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
        files = {}
        for name, where in (("fresh_cards", topic), ("backlog_cards", warm_topic)):
            path = work / f"{name}.yaml"
            path.write_text(GROUP.replace("TOPIC", where).replace("FGNAME", f"{name.replace('_', '-')}-{suffix}"))
            ensure_feature_group(boto3.client("sagemaker"), load_feature_group(path), online_only())
            files[name] = path
        backlog_profile = write_profile(work / "backlog.yaml", work / "backlog", bootstrap, args.backlog,
                                        args.trigger)
        if args.rate is None:
            top = max_rate(files["backlog_cards"], backlog_profile, work, producer, warm_topic, args.backlog,
                           args.entities)
            rate = args.load * top
        else:
            top, rate = float("nan"), args.rate
        port = int(os.environ.get("FEATURESTREAM_METRICS_PORT") or _free_port())
        # The job's quantiles are over the events written in its last `window_s`: a window inside
        # the probes' period (never reaching back to the start-up's catch-up batches), compared
        # with the probes that appeared in the same window.
        window_s = max(5, int(args.probes * args.probe_every * 0.8))
        profile_file = write_profile(work / "fresh.yaml", work / "fresh", bootstrap, 1_000_000, args.trigger, port)
        profile = yaml.safe_load(profile_file.read_text())
        profile["metrics"]["freshness_window"] = f"{window_s}s"
        if args.driver_write_max_records is not None:
            profile["feature_store"]["driver_write_max_records"] = args.driver_write_max_records
        profile["spark"]["conf"] = dict(item.split("=", 1) for item in args.spark_conf)
        profile_file.write_text(yaml.safe_dump(profile))
        job_log = work / "job.log"
        job = _job(["--feature-group", str(files["fresh_cards"]), "--env", str(profile_file)], job_log)

        def background() -> None:
            n, started = 0, time.monotonic()
            while not stop.is_set():
                due = int((time.monotonic() - started) * rate)
                while n < due:
                    producer.send(topic, _event(f"card-{random.randrange(args.entities)}", n))
                    n += 1
                time.sleep(0.005)

        threading.Thread(target=background, daemon=True).start()
        runtime = boto3.client("sagemaker-featurestore-runtime")
        group_name = load_feature_group(files["fresh_cards"]).online_store.feature_group_name
        ages: list[float] = []
        # The warm-up starts when the first probe is visible (the job is up and has caught up with
        # what arrived while it started): a slow start must not reach into the measured period.
        measure_from = float("inf")
        print(f"background load {rate:,.0f} events/s ({args.load:.0%} of max); probing ...", flush=True)
        # Probes go out on a fixed schedule, whether or not earlier ones have appeared yet, and are
        # polled together (BatchGetRecord, 100 identifiers a call): a probe waiting for its record
        # must not delay the next one, or "every 250 ms" would become "every few seconds".
        waiting: dict[str, tuple[float, bool]] = {}  # card -> (sent, counted)
        # (appeared, age) of every probe, warm-up included: the job's window is by write time.
        appeared: list[tuple[float, float]] = []
        at_start: dict[float, float] | None = None
        n, kept_sent, next_send = 0, 0, time.monotonic()
        while len(ages) < args.probes:
            if job.poll() is not None:
                raise RuntimeError(f"the job exited {job.returncode}: {job_log}")
            now = time.monotonic()
            if at_start is None and now >= measure_from:
                at_start = scrape(port)[1]
            if now >= next_send and kept_sent < args.probes:
                card = f"probe-{suffix}-{n}"
                sent = time.time()
                producer.send(topic, _event(card, -n, sent))
                producer.flush()
                waiting[card] = (sent, now >= measure_from)
                kept_sent += now >= measure_from
                n += 1
                next_send += args.probe_every
            cards = list(waiting)[:100]
            if cards:
                got = runtime.batch_get_record(Identifiers=[{
                    "FeatureGroupName": group_name, "RecordIdentifiersValueAsString": cards}])
                seen = time.time()
                for record in got.get("Records", []):
                    card = record["RecordIdentifierValueAsString"]
                    sent, counted = waiting.pop(card)
                    appeared.append((seen, seen - sent))
                    if measure_from == float("inf"):
                        measure_from = time.monotonic() + args.warmup
                        print(f"the job is up ({seen - sent:.1f} s for the first probe); warming up", flush=True)
                    if counted:
                        ages.append(seen - sent)
            time.sleep(0.01)
        own, at_end = scrape(port)
        scraped = time.time()
        breakdown = batch_breakdown(job_log)
    finally:
        stop.set()
        if job is not None and job.poll() is None:
            job.send_signal(signal.SIGTERM)
            try:
                job.wait(timeout=120)
            except subprocess.TimeoutExpired:
                job.kill()
        emulator.stop()
        # Only what this run started (services someone else started meanwhile, e.g. a test
        # session on the same state dir, stay up).
        if "kafka" not in before:
            manager.down(["kafka"])
    probe = {q: round(_quantile(ages, v), 3) for q, v in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))}
    probe["max"] = round(max(ages), 3)
    # The probes that appeared in the job's quantile window: the same period as its gauges.
    recent = [age for seen, age in appeared if seen >= scraped - window_s] or ages
    probe_window = {q: round(_quantile(recent, v), 3) for q, v in (("p50", 0.5), ("p99", 0.99))}
    delta = {q: histogram_quantile(float(q), at_start or {}, at_end) for q in ("0.5", "0.9", "0.99")}
    print(f"per micro-batch (medians): {breakdown}", flush=True)
    print(f"probe: {probe}; probe over the job's window ({len(recent)}): {probe_window}; the job's own: {own}; "
          f"the job's histogram between the first and the last probe: {delta}", flush=True)
    pairs = [Pair("freshness p50 (s): the job's own metric vs a GetRecord probe", own.get("0.5", float("nan")),
                  probe_window["p50"], "s", higher_is_better=False),
             Pair("freshness p99 (s): the job's own metric vs a GetRecord probe", own.get("0.99", float("nan")),
                  probe_window["p99"], "s", higher_is_better=False)]
    checks = {"probe_seconds": probe, "job_own_seconds": own, "probes": len(ages),
              "per_batch_median_s": breakdown, "own_window_s": window_s, "probe_seconds_in_own_window": probe_window,
              "probes_in_own_window": len(recent),
              "job_histogram_quantiles_over_probe_period_s": {q: None if v is None else round(v, 3)
                                                              for q, v in delta.items()}, "goal_p99_s": GOAL_P99_S,
              "goal_met": probe["p99"] <= GOAL_P99_S,
              "max_sustainable_events_per_s": None if args.rate is not None else round(top),
              "background_events_per_s": round(rate),
              "own_vs_probe_within_20pct": all(0.8 <= p.ratio <= 1.2 for p in pairs)}
    params = {"trigger": args.trigger, "entities": args.entities, "backlog": args.backlog, "load": args.load,
              "probe_every_s": args.probe_every, "warmup_s": args.warmup, "master": "local[2]",
              "shuffle_partitions": 2, "sink": "featurestream writer → private emulator",
              "job": "featurestream stream (subprocess), local profile",
              "driver_write_max_records": args.driver_write_max_records, "spark_conf": args.spark_conf}
    extra = {"results_dir": args.results_dir} if args.results_dir else {}
    write_results("freshness", params, pairs, checks, machine_description=machine_line, **extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
