"""Offline-store test data written the real way: records put into the emulator, which flushes
them to Parquet in SageMaker's Glue layout (locally or to moto's S3)."""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from featurestream.dev.feature_store import EmulatorProcess

NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=5, read_timeout=60)
FEATURES = [
    {"FeatureName": "id", "FeatureType": "String"},
    {"FeatureName": "ts", "FeatureType": "String"},
    {"FeatureName": "n", "FeatureType": "Integral"},
    {"FeatureName": "x", "FeatureType": "Fractional"},
    {"FeatureName": "s", "FeatureType": "String"},
]
START = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def iso(moment: datetime, style: int = 0) -> str:
    """EventTime strings in the forms AWS accepts: Z, .SSSZ, or a numeric offset."""
    utc = moment.astimezone(UTC)
    if style == 1:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    if style == 2:
        local = moment.astimezone(timezone(timedelta(hours=2)))
        return local.strftime("%Y-%m-%dT%H:%M:%S+02:00")
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Group:
    """One feature group in an emulator, with helpers to write records and flush them."""

    emulator: EmulatorProcess
    name: str
    description: dict[str, Any] = field(default_factory=dict)

    @property
    def sm(self) -> Any:
        return boto3.client("sagemaker", endpoint_url=self.emulator.url, region_name=region(), config=NO_RETRIES)

    @property
    def rt(self) -> Any:
        return boto3.client("sagemaker-featurestore-runtime", endpoint_url=self.emulator.url, region_name=region(),
                            config=NO_RETRIES)

    @classmethod
    def create(cls, emulator: EmulatorProcess, s3_uri: str, features: list[dict[str, str]] | None = None) -> Group:
        group = cls(emulator, f"cmp-{uuid.uuid4().hex[:10]}")
        group.sm.create_feature_group(
            FeatureGroupName=group.name, RecordIdentifierFeatureName="id", EventTimeFeatureName="ts",
            FeatureDefinitions=features or FEATURES, OnlineStoreConfig={"EnableOnlineStore": True},
            OfflineStoreConfig={"S3StorageConfig": {"S3Uri": s3_uri}, "DisableGlueTableCreation": True},
        )
        group.refresh()
        return group

    def refresh(self) -> dict[str, Any]:
        self.description = dict(self.sm.describe_feature_group(FeatureGroupName=self.name))
        return self.description

    @property
    def resolved_uri(self) -> str:
        return str(self.description["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"])

    def put(self, records: list[dict[str, Any]]) -> None:
        rt = self.rt
        for start in range(0, len(records), 25):
            entries = [{"FeatureGroupName": self.name,
                        "Record": [{"FeatureName": k, "ValueAsString": str(v)} for k, v in r.items() if v is not None]}
                       for r in records[start:start + 25]]
            response = rt.batch_write_record(Entries=entries)
            if response.get("Errors") or response.get("UnprocessedEntries"):
                raise AssertionError(f"batch write failed: {response}")

    def delete(self, record_id: str, event_time: str) -> None:
        self.rt.delete_record(FeatureGroupName=self.name, RecordIdentifierValueAsString=record_id,
                              EventTime=event_time)

    def add_feature(self, name: str, feature_type: str) -> None:
        self.sm.update_feature_group(FeatureGroupName=self.name,
                                     FeatureAdditions=[{"FeatureName": name, "FeatureType": feature_type}])
        self.refresh()

    def flush(self) -> int:
        return self.emulator.flush()


def batch(ids: range, hours: int, seed: int, start: datetime = START, version: int = 0) -> list[dict[str, Any]]:
    """Records for `ids` spread over `hours` hours (crossing midnight from START), mixed time spellings."""
    out = []
    for i in ids:
        moment = start + timedelta(minutes=(i * 37 + seed * 11) % (hours * 60), seconds=i % 60,
                                   milliseconds=(i * 7) % 1000 if i % 3 == 1 else 0)
        out.append({"id": f"r{i:04d}", "ts": iso(moment, i % 3), "n": i * 10 + version,
                    "x": round(i * 0.5 + version, 3), "s": f"v{version}-{i % 5}"})
    return out


def local_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.parquet")
                  if not any(part.startswith((".", "_")) for part in p.relative_to(root).parts))


def duplicate_a_file(root: Path) -> Path:
    """Copy one offline file under another name, as an at-least-once delivery would."""
    source = local_files(root)[0]
    copy = source.with_name(source.stem[:-4] + "dupe.parquet")
    shutil.copyfile(source, copy)
    return copy
