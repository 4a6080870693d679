"""Feature group definitions derived from a spec, and idempotent creation in SageMaker."""

from __future__ import annotations

import time
from typing import Any

from featurestream.config.feature_group import Aggregation, FeatureGroupSpec
from featurestream.config.profile import EnvironmentProfile
from featurestream.durations import parse_duration_ms
from featurestream.errors import FeatureStreamError

_AGG_TYPE = {Aggregation.COUNT: "Integral", Aggregation.SUM: "Fractional"}


def feature_definitions(spec: FeatureGroupSpec) -> list[dict[str, str]]:
    key_type = "String" if spec.entity.type == "string" else "Integral"
    definitions = [
        {"FeatureName": spec.entity.key, "FeatureType": key_type},
        # EventTime is the time the values are "as of" (see featurestream.aggregation), ISO-8601.
        {"FeatureName": spec.event_time.field, "FeatureType": "String"},
    ]
    for feature in spec.features:
        for name, _ in feature.output_names():
            definitions.append({"FeatureName": name, "FeatureType": _AGG_TYPE[feature.agg]})
    return definitions


def _ttl(spec: FeatureGroupSpec) -> dict[str, Any] | None:
    if spec.online_store.ttl is None:
        return None
    seconds = parse_duration_ms(spec.online_store.ttl) // 1000
    for unit, size in (("Weeks", 604_800), ("Days", 86_400), ("Hours", 3_600), ("Minutes", 60)):
        if seconds % size == 0:
            return {"Unit": unit, "Value": seconds // size}
    return {"Unit": "Seconds", "Value": seconds}


def create_request(spec: FeatureGroupSpec, profile: EnvironmentProfile) -> dict[str, Any]:
    online: dict[str, Any] = {"EnableOnlineStore": True}
    ttl = _ttl(spec)
    if ttl:
        online["TtlDuration"] = ttl
    request: dict[str, Any] = {
        "FeatureGroupName": spec.online_store.feature_group_name,
        "RecordIdentifierFeatureName": spec.entity.key,
        "EventTimeFeatureName": spec.event_time.field,
        "FeatureDefinitions": feature_definitions(spec),
        "OnlineStoreConfig": online,
        "Description": spec.description or f"featurestream feature group {spec.name}",
    }
    store = profile.feature_store
    if store.offline_store_s3_uri:
        request["OfflineStoreConfig"] = {
            "S3StorageConfig": {"S3Uri": store.offline_store_s3_uri},
            "DisableGlueTableCreation": profile.kind == "local",
            "TableFormat": "Glue",
        }
        if store.role_arn:
            request["RoleArn"] = store.role_arn
    return request


def ensure_local_offline_bucket(profile: EnvironmentProfile) -> None:
    """On the local profile, create the offline store's bucket in moto's S3 (on AWS it must exist)."""
    uri = profile.feature_store.offline_store_s3_uri
    if profile.kind != "local" or not uri or not uri.startswith("s3://"):
        return
    import boto3

    bucket = uri.removeprefix("s3://").split("/", 1)[0]
    s3 = boto3.client("s3", region_name=profile.feature_store.region)
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError:
        s3.create_bucket(Bucket=bucket)


def ensure_feature_group(client: Any, spec: FeatureGroupSpec, profile: EnvironmentProfile,
                         timeout_s: float = 300.0) -> dict[str, Any]:
    """Create the group if it does not exist and wait until it is `Created`; return its description."""
    name = spec.online_store.feature_group_name
    # moto keeps buckets in memory: after a stack restart the bucket is gone, the group is not.
    ensure_local_offline_bucket(profile)
    try:
        description: dict[str, Any] = client.describe_feature_group(FeatureGroupName=name)
    except client.exceptions.ResourceNotFound:
        client.create_feature_group(**create_request(spec, profile))
        description = client.describe_feature_group(FeatureGroupName=name)
    deadline = time.monotonic() + timeout_s
    while description.get("FeatureGroupStatus") == "Creating":
        if time.monotonic() > deadline:
            raise FeatureStreamError(f"feature group {name} still Creating after {timeout_s:.0f}s")
        time.sleep(1.0)
        description = client.describe_feature_group(FeatureGroupName=name)
    if description.get("FeatureGroupStatus") != "Created":
        raise FeatureStreamError(
            f"feature group {name} is {description.get('FeatureGroupStatus')}: {description.get('FailureReason', '')}"
        )
    return description

