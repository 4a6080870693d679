"""Bringing a new version online with its history, without a gap (README "History and new versions").

The procedure for `card-risk-v2`, on the local stack, by the CLI's own entry point:
1. `feature-groups apply` the new version (a new online_store.feature_group_name);
2. `backfill` it from the event history (here the JSON lines an archive or an RDS export would hold)
   up to a switch time, into its offline store on S3;
3. `stream` it from a new checkpoint over the topic's retention (`starting_offsets: earliest`), so
   its windows see the events before the switch.
Then every online record and every offline row (the backfill's and the ones the Feature Store
replicated from the stream) equals an independent from-scratch computation over all events
(tests/engine/oracle.py) as of its EventTime.
"""

from __future__ import annotations

import io
import json
import os
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest

from featurestream.cli import main
from featurestream.dev.generator import produce_kafka
from tests.backfill.harness import ms_of, write_events
from tests.engine.harness import GROUP_YAML, ORACLE_GROUP, encode, event
from tests.engine.oracle import feature_value, replay

pytestmark = pytest.mark.integration

START_MS = (int(time.time()) // 3600 - 6) * 3_600_000
CARDS = ("card-a", "card-b", "card-c", "card-d")


def _events() -> list[dict[str, Any]]:
    """Four hours of payments in event-time order, some filtered, some duplicated."""
    events = []
    for i in range(160):
        amount = -1.0 if i % 17 == 0 else float(i % 9) + 0.25
        events.append(event(CARDS[i % 4], START_MS + i * 90_000 + (i % 7) * 1_000, amount, f"m-{i % 5}"))
        if i % 23 == 0:
            events.append(dict(events[-1]))
    return events


def _same(got: Any, want: Any) -> bool:
    if want is None or got is None:
        return got is None and want is None
    if isinstance(want, float) or isinstance(got, float):
        return abs(float(got) - float(want)) <= 1e-9 * max(1.0, abs(float(want)))
    return str(got) == str(want)


def _offline_rows(description: dict[str, Any]) -> list[dict[str, Any]]:
    uri = description["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3")
    rows: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for item in page.get("Contents", []):
            if item["Key"].endswith(".parquet"):
                body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
                rows += [{**r, "_file": item["Key"]} for r in pq.read_table(io.BytesIO(body)).to_pylist()]
    return rows


def test_a_new_version_backfilled_to_a_switch_time_then_streamed_equals_a_from_scratch_run(
        spark: Any, stack_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    suffix = uuid.uuid4().hex[:8]
    name, topic = f"card-risk-{suffix}-v2", f"payments-v2-{suffix}"
    group = tmp_path / "card_risk_v2.yaml"
    group.write_text(GROUP_YAML.replace("TOPIC", topic).replace("FGNAME", name))
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({
        "kafka": {"bootstrap_servers": stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"]},
        "feature_store": {"offline_store_s3_uri": f"s3://featurestream-offline/v2-{suffix}"},
        "spark": {"master": "local[2]", "shuffle_partitions": 2},
        "checkpoint_root": str(tmp_path / "checkpoints"), "dlq_path": str(tmp_path / "dlq"),
        "metrics": {"enabled": False}, "lineage": {"transport": "none", "sagemaker": {"enabled": True}},
    }))
    events = _events()
    history = tmp_path / "history.jsonl"
    write_events(history, events)
    produce_kafka([encode(e) for e in events], stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"], topic)
    switch_ms = START_MS + 150 * 60_000
    iso = lambda ms: datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()  # noqa: E731

    assert main(["feature-groups", "apply", str(group), "--env", str(profile)]) == 0
    assert main(["backfill", "--feature-group", str(group), "--env", str(profile), "--from-files", str(history),
                 "--format", "json", "--start", iso(START_MS), "--end", iso(switch_ms), "--chunk", "1h"]) == 0
    assert main(["stream", "--feature-group", str(group), "--env", str(profile), "--available-now"]) == 0
    capsys.readouterr()
    endpoint = os.environ["AWS_ENDPOINT_URL_SAGEMAKER"]
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/_emulator/flush", method="POST"), timeout=60).read()

    accepted = replay([events], ORACLE_GROUP).accepted
    per_card: dict[str, list[dict[str, Any]]] = {c: [e for e in accepted if e["card_id"] == c] for c in CARDS}

    def expected(card: str, as_of: int) -> dict[str, Any]:
        seen = [e for e in per_card[card] if e["ts_ms"] <= as_of]
        return {f.name: feature_value(f, seen, as_of, ORACLE_GROUP.tile_s) for f in ORACLE_GROUP.features}

    runtime = boto3.client("sagemaker-featurestore-runtime")
    newest = max(e["ts_ms"] for e in accepted)
    for card in CARDS:
        record = {f["FeatureName"]: f["ValueAsString"]
                  for f in runtime.get_record(FeatureGroupName=name, RecordIdentifierValueAsString=card)["Record"]}
        as_of = ms_of(record["event_time"])
        assert as_of >= max(e["ts_ms"] for e in per_card[card]) and as_of <= newest + 1_000
        want = expected(card, as_of)
        assert all(_same(record.get(k), v) for k, v in want.items()), (card, record, want)

    rows = _offline_rows(boto3.client("sagemaker").describe_feature_group(FeatureGroupName=name))
    backfilled = [r for r in rows if "_fsbf-" in r["_file"]]
    streamed = [r for r in rows if "_fsbf-" not in r["_file"]]
    assert backfilled and streamed
    assert max(ms_of(r["event_time"]) for r in backfilled) < switch_ms
    # Every accepted event before the switch has its backfilled row: history without a gap.
    assert {(e["card_id"], e["ts_ms"]) for e in accepted if e["ts_ms"] < switch_ms} <= \
        {(r["card_id"], ms_of(r["event_time"])) for r in backfilled}
    problems = []
    for row in rows:
        want = expected(row["card_id"], ms_of(row["event_time"]))
        problems += [(row["card_id"], row["event_time"], k, row.get(k), v) for k, v in want.items()
                     if not _same(row.get(k), v)]
    assert not problems, problems[:5]

    # SageMaker lineage: the history file ContributedTo the backfill, the topic to the stream, and
    # both Produced the group's artifact (its ARN, the fingerprint the apply tagged it with).
    sm = boto3.client("sagemaker")
    arn = sm.describe_feature_group(FeatureGroupName=name)["FeatureGroupArn"]
    (artifact,) = sm.list_artifacts(SourceUri=arn, ArtifactType="FeatureGroup")["ArtifactSummaries"]
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=arn)["Tags"]}
    assert artifact["Source"]["SourceTypes"] == [{"SourceIdType": "Custom", "Value": tags["featurestream:definition"]}]
    producers = {e["SourceType"]: e["SourceArn"] for e in sm.list_associations(
        DestinationArn=artifact["ArtifactArn"], AssociationType="Produced")["AssociationSummaries"]}
    assert set(producers) == {"featurestream-backfill", "featurestream-stream"}
    inputs = {kind: [sm.describe_artifact(ArtifactArn=e["SourceArn"])["Source"]["SourceUri"]
                     for e in sm.list_associations(DestinationArn=arn_)["AssociationSummaries"]]
              for kind, arn_ in producers.items()}
    assert inputs["featurestream-backfill"] == ["file://" + str(history.resolve())]
    assert inputs["featurestream-stream"] == [f"kafka://{stack_env['FEATURESTREAM_KAFKA_BOOTSTRAP'].split(',')[0]}/{topic}"]
