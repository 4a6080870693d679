"""Helpers of the writer suite: feature groups on an emulator, an independent expectation, reads."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
from botocore.config import Config

from featurestream.config.profile import FeatureStoreSpec
from featurestream.connectors.online_store import OnlineStoreTarget
from featurestream.connectors.writer.settings import WriterSettings

FEATURES = [
    ("id", "String"), ("ts", "String"), ("n", "Integral"), ("x", "Fractional"), ("s", "String"),
]
T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=30)
# Reads in tests with injected faults must get through them: botocore's own retries do that.
READS = Config(retries={"mode": "standard", "total_max_attempts": 30}, connect_timeout=5, read_timeout=30)


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def target(name: str) -> OnlineStoreTarget:
    return OnlineStoreTarget(feature_group_name=name, record_identifier="id", event_time_feature="ts",
                             feature_names=("n", "x", "s"), region=region())


def writer_settings(dlq_path: str | Path | None = None, **store: Any) -> WriterSettings:
    """Writer settings the way a job gets them: a profile's `feature_store` section, converted."""
    return WriterSettings.from_spec(FeatureStoreSpec(**store), None if dlq_path is None else str(dlq_path))


def create_group(url: str, *, offline: bool = False, n_type: str = "Integral") -> dict[str, Any]:
    sm = boto3.client("sagemaker", endpoint_url=url, region_name=region(), config=NO_RETRIES)
    name = f"w-{uuid.uuid4().hex[:10]}"
    kwargs: dict[str, Any] = {
        "FeatureGroupName": name, "RecordIdentifierFeatureName": "id", "EventTimeFeatureName": "ts",
        "FeatureDefinitions": [{"FeatureName": f, "FeatureType": n_type if f == "n" else t} for f, t in FEATURES],
        "OnlineStoreConfig": {"EnableOnlineStore": True},
    }
    if offline:
        kwargs["OfflineStoreConfig"] = {"S3StorageConfig": {"S3Uri": "s3://writer-tests/offline"}}
    sm.create_feature_group(**kwargs)
    return dict(sm.describe_feature_group(FeatureGroupName=name))


def events(entities: int, per_entity: int = 1, seed: int = 1) -> list[dict[str, Any]]:
    """Rows (id, ts, n, x, s); with per_entity > 1 an entity's rows have distinct event times."""
    import random

    rng = random.Random(seed)
    rows = []
    for e in range(entities):
        offsets = rng.sample(range(1, 3600), per_entity)
        for k, offset in enumerate(offsets):
            rows.append({"id": f"card-{e:05d}", "ts": T0 + timedelta(seconds=offset, milliseconds=rng.randrange(1000)),
                         "n": rng.randrange(10**6), "x": round(rng.uniform(-1e3, 1e3), 4), "s": f"v{k}"})
    rng.shuffle(rows)
    return rows


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def expected_state(rows: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Independent of the writer: the newest row per id, rendered as the online store returns it."""
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        if row["id"] not in latest or row["ts"] > latest[row["id"]]["ts"]:
            latest[row["id"]] = row
    return {k: {"id": k, "ts": iso(r["ts"]), "n": str(r["n"]), "x": repr(float(r["x"])), "s": r["s"]}
            for k, r in latest.items()}


def online_state(url: str, name: str, ids: list[str]) -> dict[str, dict[str, str]]:
    """Every record of `ids` read back with BatchGetRecord (100 per call, unprocessed ones again)."""
    rt = boto3.client("sagemaker-featurestore-runtime", endpoint_url=url, region_name=region(), config=READS)
    state: dict[str, dict[str, str]] = {}
    pending = list(ids)
    for _ in range(100):
        if not pending:
            return state
        chunk, pending = pending[:100], pending[100:]
        got = rt.batch_get_record(Identifiers=[{"FeatureGroupName": name, "RecordIdentifiersValueAsString": chunk}])
        assert not got["Errors"], got["Errors"][:3]
        for rec in got["Records"]:
            state[rec["RecordIdentifierValueAsString"]] = {f["FeatureName"]: f["ValueAsString"] for f in rec["Record"]}
        for left in got["UnprocessedIdentifiers"]:
            pending.extend(left["RecordIdentifiersValueAsString"])
    raise AssertionError(f"{len(pending)} identifiers still unprocessed after 100 reads")


def list_ids(url: str, name: str) -> list[str]:
    rt = boto3.client("sagemaker-featurestore-runtime", endpoint_url=url, region_name=region(), config=READS)
    ids: list[str] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"FeatureGroupName": name, "MaxResults": 100}
        if token:
            kwargs["NextToken"] = token
        page = rt.list_records(**kwargs)
        ids.extend(page["RecordIdentifiers"])
        token = page.get("NextToken")
        if not token:
            return ids


def offline_rows(offline_dir: Path, described: dict[str, Any]) -> list[dict[str, Any]]:
    uri = described["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    base = offline_dir / uri.removeprefix("s3://")
    rows: list[dict[str, Any]] = []
    for path in sorted(p for p in base.rglob("*.parquet") if not p.name.startswith(".")):
        rows.extend(pq.read_table(path).to_pylist())
    return rows


def normalise(state: dict[str, dict[str, str]]) -> dict[str, dict[str, Any]]:
    """Compare floats as numbers: the writer's text form may differ from Python's repr."""
    return {k: {f: (float(v) if f == "x" else v) for f, v in rec.items()} for k, rec in state.items()}
