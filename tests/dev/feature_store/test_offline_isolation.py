"""Issue 19, finding 1: one record or one group never stops offline replication for the others.

A row that can never be written is quarantined with its reason; a group whose bucket is gone
is reported Blocked while every other group keeps replicating; a missing bucket fails
CreateFeatureGroup; an EventTime outside AWS's documented range is refused at PutRecord.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.dev.feature_store.helpers import (
    DEFAULT_FEATURES,
    offline_rows,
    record,
    runtime_client,
    sagemaker_client,
)

pytestmark = pytest.mark.feature_store

T0 = "2024-05-01T10:00:00Z"
# Accepted by PutRecord before the fix: 9999-12-31T23:59:59 at UTC-23:59 is year 10000 in UTC.
BEYOND_9999 = "9999-12-31T23:59:59-23:59"


def _create(sm: Any, name: str, uri: str = "s3://offline-bucket/isolation") -> dict[str, Any]:
    sm.create_feature_group(
        FeatureGroupName=name, RecordIdentifierFeatureName="id", EventTimeFeatureName="ts",
        FeatureDefinitions=DEFAULT_FEATURES, OnlineStoreConfig={"EnableOnlineStore": True},
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": uri}},
    )
    return dict(sm.describe_feature_group(FeatureGroupName=name))


def test_event_time_beyond_year_9999_is_refused_at_put_record(rt: Any, make_group: Any) -> None:
    name = make_group()["FeatureGroupName"]
    with pytest.raises(rt.exceptions.ValidationError) as info:
        rt.put_record(FeatureGroupName=name, Record=record(id="late", ts=BEYOND_9999))
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "EventTime" in info.value.response["Error"]["Message"]
    assert "Record" not in rt.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="late")


def _inject_queue_rows(state_dir: Path, group: str, rows: list[dict[str, Any]]) -> None:
    """Queue rows the way an emulator from before this fix accepted them (it is stopped now)."""
    conn = sqlite3.connect(state_dir / "online-store.sqlite3")
    try:
        gid = conn.execute("SELECT gid FROM feature_groups WHERE name_key = ?", (group.lower(),)).fetchone()[0]
        for row in rows:
            conn.execute("INSERT INTO offline_queue(gid, row) VALUES (?, ?)", (gid, json.dumps(row)))
        # The older emulator had already fixed its (failing) flush batch over these rows.
        conn.execute("INSERT OR REPLACE INTO flush_plan(id, seq_hi) SELECT 1, MAX(seq) FROM offline_queue")
        conn.commit()
    finally:
        conn.close()


def test_a_row_that_can_never_be_written_is_quarantined_not_retried_forever(emulator_factory: Any) -> None:
    """Before the fix every flush failed on the year-10000 row (ValueError) and retried the same
    batch: nothing was written for any group, before or after a restart."""
    emu = emulator_factory()
    sm, rt = sagemaker_client(emu.url), runtime_client(emu.url)
    poisoned, healthy = _create(sm, "poisoned"), _create(sm, "healthy")
    for i in range(5):
        rt.put_record(FeatureGroupName="poisoned", Record=record(id=f"p{i}", ts=T0, n=i))
    emu.stop()  # the graceful stop flushed these five
    _inject_queue_rows(emu.state_dir, "poisoned", [
        {"v": {"id": "y10k", "ts": BEYOND_9999}, "t": 253402387140.0, "a": time.time(), "d": False},
        {"v": {"id": "badint", "ts": T0, "n": "not-a-number"}, "t": 1714557600.0, "a": time.time(), "d": False},
    ])
    emu.start()
    rt = runtime_client(emu.url)
    for i in range(5, 10):
        rt.put_record(FeatureGroupName="poisoned", Record=record(id=f"p{i}", ts=T0, n=i))
    for i in range(7):
        rt.put_record(FeatureGroupName="healthy", Record=record(id=f"h{i}", ts=T0, n=i))

    assert emu.flush() == 12
    root = Path(emu.options["offline_local_dir"])
    assert sorted(r["n"] for r in offline_rows(root, poisoned)) == list(range(10))
    assert sorted(r["n"] for r in offline_rows(root, healthy)) == list(range(7))

    health = emu.health()
    assert health["offline_queued_rows"] == 0
    assert health["offline_quarantined_rows"] == 2
    detail = health["offline_quarantine"]["poisoned"]
    assert detail["rows"] == 2 and detail["reason"]
    # Quarantine is durable: a restart neither retries nor forgets the two rows.
    emu.restart()
    assert emu.flush() == 0
    assert emu.health()["offline_quarantined_rows"] == 2


def test_a_missing_bucket_fails_create_feature_group(moto_s3: str, emulator_factory: Any) -> None:
    env = {**os.environ, "AWS_ENDPOINT_URL_S3": moto_s3}
    emu = emulator_factory(offline_local_dir=None, env=env)
    sm = sagemaker_client(emu.url)
    with pytest.raises(sm.exceptions.ClientError) as info:
        _create(sm, "nobucket", "s3://no-such-bucket-anywhere/base")
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert "no-such-bucket-anywhere" in info.value.response["Error"]["Message"]
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_feature_group(FeatureGroupName="nobucket")


def test_a_group_whose_bucket_is_gone_does_not_hold_up_the_others(moto_s3: str, emulator_factory: Any) -> None:
    """Before the fix the NoSuchBucket of the first group failed the whole flush: the second
    group's rows stayed queued behind it."""
    s3 = boto3.client("s3", endpoint_url=moto_s3, region_name="us-east-1")
    s3.create_bucket(Bucket="iso-gone")
    s3.create_bucket(Bucket="iso-kept")
    env = {**os.environ, "AWS_ENDPOINT_URL_S3": moto_s3}
    emu = emulator_factory(offline_local_dir=None, env=env)
    sm, rt = sagemaker_client(emu.url), runtime_client(emu.url)
    _create(sm, "gone", "s3://iso-gone/base")
    kept = _create(sm, "kept", "s3://iso-kept/base")
    for i in range(6):  # the doomed group's rows are queued first
        rt.put_record(FeatureGroupName="gone", Record=record(id=f"g{i}", ts=T0, n=i))
    for i in range(4):
        rt.put_record(FeatureGroupName="kept", Record=record(id=f"k{i}", ts=T0, n=i))
    s3.delete_bucket(Bucket="iso-gone")

    with pytest.raises(Exception, match="NoSuchBucket"):
        emu.flush()  # not everything could be written: the flush says which group and why
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="iso-kept").get("Contents", [])]
    assert len(keys) >= 1
    prefix = kept["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"].removeprefix("s3://iso-kept/")
    assert all(k.startswith(prefix) for k in keys)

    status = sm.describe_feature_group(FeatureGroupName="gone")["OfflineStoreStatus"]
    assert status["Status"] == "Blocked" and "NoSuchBucket" in status["BlockedReason"]
    assert sm.describe_feature_group(FeatureGroupName="kept")["OfflineStoreStatus"] == {"Status": "Active"}
    health = emu.health()
    assert health["offline_queued_rows"] == 6
    assert "NoSuchBucket" in health["offline_blocked"]["gone"]

    s3.create_bucket(Bucket="iso-gone")
    assert emu.flush() == 6
    assert sm.describe_feature_group(FeatureGroupName="gone")["OfflineStoreStatus"] == {"Status": "Active"}
    assert emu.health()["offline_blocked"] == {}
