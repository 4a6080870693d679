"""`featurestream consistency` on the local stack (issue 17's acceptance).

An adversarial event stream (out of order within the allowed lateness, exact duplicates, a silent
gap of 20 minutes, filtered events, hot and cold cards) goes through the real streaming job in two
runs (a restart from its checkpoint between them) into the emulator's online store, through its
offline replication into moto's S3, and into the raw event archive (Iceberg). Then:
1. consistency from the archive reports every feature 100% equal, every offline row equal, exit 0;
2. after a deliberate corruption (a wrong `total_5m` PutRecord'ed for two cards, EventTime + 1 ms,
   and offline files removed), it names exactly the corrupted cards and feature, and the entities
   whose newest offline row is gone as found by an independent read of S3 (pyarrow), exit 3 (this
   time recomputed from the events as JSON-lines files).
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest
import yaml

from featurestream.cli import main
from featurestream.dev.generator import produce_kafka
from tests.backfill.harness import ms_of, write_events
from tests.engine.harness import GROUP_YAML, encode, event

pytestmark = pytest.mark.integration

START_MS = (int(time.time()) // 3600 - 3) * 3_600_000
HOT, COLD = ("card-h1", "card-h2"), ("card-c1", "card-c2", "card-c3", "card-c4")
LATENESS_MS = 120_000
CORRUPTED = ("card-h2", "card-c1")


def _events(rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Two parts (before and after the restart), each in an order no event of which is late."""
    timeline = []
    clock = START_MS
    for i in range(240):
        clock += rng.choice([1_000, 7_000, 20_000, 45_000])
        if i == 120:
            clock += 20 * 60_000  # a silent gap: decay boundaries pass with no event
        card = rng.choice(HOT) if rng.random() < 0.7 else rng.choice(COLD)
        amount = -1.0 if i % 19 == 0 else round(rng.uniform(0.5, 90.0), 2)
        timeline.append(event(card, clock, amount, f"m-{rng.randrange(6)}"))
    # Out of order within the lateness: each event is produced at its time plus a random delay of
    # up to 90 s, so none is more than 90 s behind an event produced before it (the allowed
    # lateness is 120 s: never late).
    produced: list[dict[str, Any]] = []
    for e in sorted(timeline, key=lambda e: e["ts_ms"] + rng.randrange(90_000)):
        produced.append(e)
        if rng.random() < 0.08:
            produced.append(dict(e))  # an exact duplicate
    cut = len(produced) // 2
    return produced[:cut], produced[cut:]


def _flush() -> None:
    endpoint = os.environ["AWS_ENDPOINT_URL_SAGEMAKER"]
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/_emulator/flush", method="POST"), timeout=60).read()


def _offline_files(name: str) -> tuple[str, list[str]]:
    description = boto3.client("sagemaker").describe_feature_group(FeatureGroupName=name)
    uri = description["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    keys = [item["Key"] for page in boto3.client("s3").get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix + "/") for item in page.get("Contents", []) if item["Key"].endswith(".parquet")]
    return bucket, sorted(keys)


def _newest_offline(bucket: str, keys: list[str]) -> dict[str, dict[str, Any]]:
    s3 = boto3.client("s3")
    newest: dict[str, dict[str, Any]] = {}
    for key in keys:
        for row in pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())).to_pylist():
            row["_key"] = key
            card = row["card_id"]
            if card not in newest or ms_of(row["event_time"]) > ms_of(newest[card]["event_time"]):
                newest[card] = row
    return newest


def _online(name: str, card: str) -> dict[str, str]:
    runtime = boto3.client("sagemaker-featurestore-runtime")
    record = runtime.get_record(FeatureGroupName=name, RecordIdentifierValueAsString=card)["Record"]
    return {f["FeatureName"]: f["ValueAsString"] for f in record}


def _consistency(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(argv)
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


def test_consistency_is_100_percent_after_an_adversarial_stream_and_names_exactly_what_was_corrupted(
        spark: Any, stack_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suffix = uuid.uuid4().hex[:8]
    name, topic = f"consistency-{suffix}", f"payments-consistency-{suffix}"
    group = tmp_path / "cards.yaml"
    group.write_text(GROUP_YAML.replace("TOPIC", topic).replace("FGNAME", name) + "archive: true\n")
    local = yaml.safe_load((Path(__file__).parents[2] / "featurestream/config/profiles/local.yaml").read_text())
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({
        "kafka": {"bootstrap_servers": stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"]},
        "feature_store": {"offline_store_s3_uri": f"s3://featurestream-offline/consistency-{suffix}"},
        "spark": {"master": "local[2]", "shuffle_partitions": 2},
        "checkpoint_root": str(tmp_path / "checkpoints"), "dlq_path": str(tmp_path / "dlq"),
        "metrics": {"enabled": False}, "lineage": {"transport": "none"}, "catalog": local["catalog"],
    }))
    first, second = _events(random.Random(17))
    events_file = tmp_path / "events.jsonl"
    write_events(events_file, first + second)
    assert main(["feature-groups", "apply", str(group), "--env", str(profile)]) == 0
    for part in (first, second):  # the second run restarts from the first one's checkpoint
        produce_kafka([encode(e) for e in part], stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"], topic)
        assert main(["stream", "--feature-group", str(group), "--env", str(profile), "--available-now"]) == 0
    _flush()
    assert not list((tmp_path / "dlq").rglob("late/*/*.parquet"))  # the stream found no late event
    report = tmp_path / "clean.html"
    base = ["consistency", "--feature-group", str(group), "--env", str(profile), "--sample", "6",
            "--max-offline-lag", "1ms"]
    files = ["--from-files", str(events_file), "--format", "json"]

    # The clean check recomputes from the raw event archive the stream kept; the other from files.
    code, clean = _consistency([*base, "--from-archive", "--report", str(report)], capsys)
    assert code == 0, clean["exceeded"]
    assert clean["source"].startswith("raw event archive ")
    features = clean["definition"]["features"]
    assert len(features) == 12 and clean["sample"]["drawn"] == 6 and clean["sample"]["hot"] >= 1
    assert clean["sample"]["cold"] >= 1 and clean["sample"]["online_missing"] == []
    assert {n: (f["match_rate"], f["compared"], f["different"], sum(f["explained"].values()))
            for n, f in features.items()} == {n: (1.0, 6, 0, 0) for n in features}
    assert clean["offline"]["equal"] == 6 and clean["exceeded"] == []
    assert report.read_text().count("<svg") >= 4

    # Corruption: a wrong total_5m for two cards (EventTime + 1 ms, so the store takes it) ...
    runtime = boto3.client("sagemaker-featurestore-runtime")
    for card in CORRUPTED:
        record = _online(name, card)
        moved = datetime.fromtimestamp((ms_of(record["event_time"]) + 1) / 1000, tz=UTC)
        record["event_time"] = moved.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        record["total_5m"] = str(float(record["total_5m"]) + 1000.0)
        runtime.put_record(FeatureGroupName=name, Record=[{"FeatureName": k, "ValueAsString": v}
                                                          for k, v in record.items()])
    _flush()
    # ... and the offline files holding the newest rows of two other cards removed.
    bucket, keys = _offline_files(name)
    newest = _newest_offline(bucket, keys)
    removed = {newest[card]["_key"] for card in ("card-h1", "card-c3")}
    for key in removed:
        boto3.client("s3").delete_object(Bucket=bucket, Key=key)
    # The expected offline outcome, independently: the remaining files' newest rows vs GetRecord.
    remaining = _newest_offline(bucket, [k for k in keys if k not in removed])
    expected: dict[str, list[str]] = {"behind": [], "missing": [], "different": [], "ahead": []}
    for card in HOT + COLD:
        online, row = _online(name, card), remaining.get(card)
        if row is None:
            expected["missing"].append(card)
        elif ms_of(row["event_time"]) < ms_of(online["event_time"]):
            expected["behind"].append(card)
        elif ms_of(row["event_time"]) > ms_of(online["event_time"]):
            expected["ahead"].append(card)
    assert expected["behind"] or expected["missing"]

    broken_report = tmp_path / "broken.html"
    code, broken = _consistency([*base, *files, "--report", str(broken_report)], capsys)
    assert code == 3, broken
    assert all(card in broken_report.read_text() for card in CORRUPTED)
    if os.environ.get("FEATURESTREAM_KEEP_REPORTS"):  # docs/consistency-report.png is taken from these
        for page in (report, broken_report):
            shutil.copy(page, Path(os.environ["FEATURESTREAM_KEEP_REPORTS"]) / page.name)
    definition = broken["definition"]
    assert definition["different_entities"] == sorted(CORRUPTED), definition
    assert {n for n, f in definition["features"].items() if f["different"]} == {"total_5m"}
    total = definition["features"]["total_5m"]
    assert total["different_entities"] == sorted(CORRUPTED) and total["max_abs_diff"] == pytest.approx(1000.0)
    got = {k: sorted(v) for k, v in broken["offline"]["entities"].items()}
    assert got == {k: sorted(v) for k, v in expected.items()}
    assert any("total_5m" in p for p in broken["exceeded"])
