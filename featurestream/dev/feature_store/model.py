"""A feature group's definition: validated from CreateFeatureGroup, rendered for Describe."""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from featurestream.dev.feature_store.errors import InvalidInput
from featurestream.dev.feature_store.types import (
    COLLECTION_TYPES,
    FEATURE_TYPES,
    FRACTIONAL,
    RESERVED_FEATURE_NAMES,
    STRING,
    is_valid_name,
    quick_check,
    ttl_seconds,
)
from featurestream.io.s3_uri import S3UriError, parse_s3_uri

MAX_FEATURES = 2500
_S3_URI = re.compile(r"(https|s3)://([^/]+)/?(.*)")
_ARN = re.compile(r"arn:aws[a-z\-]*:sagemaker:([a-z0-9\-]*):([0-9]{12}):feature-group/(.+)")


@dataclass(frozen=True)
class Feature:
    name: str
    type: str
    collection: str | None = None
    dimension: int | None = None


@dataclass
class FeatureGroup:
    """Everything the emulator knows about one feature group; `spec` is the Describe body."""

    name: str
    arn: str
    record_identifier: str
    event_time: str
    features: dict[str, Feature]
    creation_time: float
    online_enabled: bool
    offline_enabled: bool
    ttl_seconds: float | None
    spec: dict[str, Any] = field(default_factory=dict)

    @property
    def creation_epoch(self) -> int:
        return int(self.creation_time)

    @functools.cached_property
    def scalar_checks(self) -> dict[str, Callable[[str], object] | None]:
        """{name: `quick_check` of its type} of the scalar features; a group is never changed in
        place (an update makes a new one), so this is computed once per group."""
        return {name: quick_check(f.type) for name, f in self.features.items() if f.collection is None}

    def feature(self, name: str) -> Feature:
        try:
            return self.features[name]
        except KeyError:
            raise InvalidInput(
                f"Feature '{name}' is not defined in feature group '{self.name}'."
            ) from None

    def resolved_output_uri(self) -> str | None:
        offline = self.spec.get("OfflineStoreConfig")
        if offline is None:
            return None
        return str(offline["S3StorageConfig"]["ResolvedOutputS3Uri"])

    def describe(self) -> dict[str, Any]:
        # Tags are kept with the group but, as in SageMaker, only ListTags returns them.
        return {k: copy.deepcopy(v) for k, v in self.spec.items() if k != "Tags"}

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "FeatureGroupName": self.name,
            "FeatureGroupArn": self.arn,
            "CreationTime": self.spec["CreationTime"],
            "FeatureGroupStatus": self.spec["FeatureGroupStatus"],
        }
        if "OfflineStoreStatus" in self.spec:
            out["OfflineStoreStatus"] = self.spec["OfflineStoreStatus"]
        return out


def feature_group_arn(region: str, account: str, name: str) -> str:
    # SageMaker lower-cases resource names inside ARNs.
    return f"arn:aws:sagemaker:{region}:{account}:feature-group/{name.lower()}"


def name_from_arn(name_or_arn: str, region: str, account: str) -> str | None:
    """The lower-cased group name an ARN points at, None for a plain name.

    An ARN for another region or account names a group this endpoint cannot hold, so it
    resolves to a name that never exists.
    """
    match = _ARN.fullmatch(name_or_arn)
    if match is None:
        return None
    arn_region, arn_account, name = match.groups()
    if arn_region != region or arn_account != account:
        return "\x00" + name
    return name.lower()


def parse_feature_definition(raw: Any, storage_type: str, where: str) -> Feature:
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where} must be a structure.")
    name, ftype = raw.get("FeatureName"), raw.get("FeatureType")
    if not is_valid_name(name):
        raise InvalidInput(f"{where}.FeatureName '{name}' is not a valid feature name.")
    if name.lower() in RESERVED_FEATURE_NAMES:
        raise InvalidInput(
            f"Feature name '{name}' is reserved: {', '.join(RESERVED_FEATURE_NAMES)} cannot be used."
        )
    if not isinstance(ftype, str) or ftype not in FEATURE_TYPES:
        raise InvalidInput(
            f"{where}.FeatureType '{ftype}' for feature '{name}' must be one of {', '.join(FEATURE_TYPES)}."
        )
    collection = raw.get("CollectionType")
    dim = None
    if collection is not None:
        if not isinstance(collection, str) or collection not in COLLECTION_TYPES:
            raise InvalidInput(f"CollectionType '{collection}' for feature '{name}' is not valid.")
        if storage_type != "InMemory":
            raise InvalidInput(
                f"Feature '{name}': CollectionType is only supported with the InMemory storage type."
            )
        if collection == "Vector":
            config = raw.get("CollectionConfig")
            vector = config.get("VectorConfig") if isinstance(config, dict) else None
            dim = vector.get("Dimension") if isinstance(vector, dict) else None
            if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= 8192:
                raise InvalidInput(f"Feature '{name}': a Vector needs CollectionConfig.VectorConfig.Dimension.")
            if ftype != FRACTIONAL:
                raise InvalidInput(f"Feature '{name}': a Vector must be of type Fractional.")
    return Feature(name=name, type=str(ftype), collection=collection, dimension=dim)


def build_feature_group(
    request: dict[str, Any], region: str, account: str, now: float
) -> FeatureGroup:
    """Validate a CreateFeatureGroup request the way SageMaker does and build the group."""
    name = request.get("FeatureGroupName")
    if not is_valid_name(name):
        raise InvalidInput(
            f"FeatureGroupName '{name}' must match [a-zA-Z0-9]([_-]*[a-zA-Z0-9]){{0,63}}."
        )
    online_cfg = _structure(request, "OnlineStoreConfig")
    offline_cfg = _structure(request, "OfflineStoreConfig")
    storage_type = (online_cfg or {}).get("StorageType") or "Standard"
    if not isinstance(storage_type, str) or storage_type not in ("Standard", "Standard_V2", "InMemory"):
        raise InvalidInput(f"OnlineStoreConfig.StorageType '{storage_type}' is not valid.")

    raw_defs = request.get("FeatureDefinitions")
    if not isinstance(raw_defs, list) or not raw_defs:
        raise InvalidInput("FeatureDefinitions must contain at least one feature definition.")
    if len(raw_defs) > MAX_FEATURES:
        raise InvalidInput(f"FeatureDefinitions may hold at most {MAX_FEATURES} features.")
    features: dict[str, Feature] = {}
    seen_lower: set[str] = set()
    for i, raw in enumerate(raw_defs):
        feat = parse_feature_definition(raw, storage_type, f"FeatureDefinitions[{i}]")
        # Glue column names are case-insensitive, so AWS refuses names that differ only in case.
        if feat.name.lower() in seen_lower:
            raise InvalidInput(f"Feature name '{feat.name}' is defined more than once.")
        seen_lower.add(feat.name.lower())
        features[feat.name] = feat

    record_id, event_time = request.get("RecordIdentifierFeatureName"), request.get("EventTimeFeatureName")
    if not isinstance(record_id, str) or record_id not in features:
        raise InvalidInput(
            f"RecordIdentifierFeatureName '{record_id}' must be one of the FeatureDefinitions."
        )
    if not isinstance(event_time, str) or event_time not in features:
        raise InvalidInput(f"EventTimeFeatureName '{event_time}' must be one of the FeatureDefinitions.")
    if record_id == event_time:
        raise InvalidInput("RecordIdentifierFeatureName and EventTimeFeatureName must differ.")
    if features[record_id].collection or features[event_time].collection:
        raise InvalidInput("The record identifier and event time features cannot be collections.")
    if features[event_time].type not in (FRACTIONAL, STRING):
        raise InvalidInput(
            f"EventTimeFeatureName '{event_time}' must be of type String or Fractional, "
            f"not {features[event_time].type}."
        )

    online_enabled = (online_cfg or {}).get("EnableOnlineStore", False)
    if not isinstance(online_enabled, bool):
        raise InvalidInput("OnlineStoreConfig.EnableOnlineStore must be a boolean.")
    if online_cfg is None and offline_cfg is None:
        raise InvalidInput("At least one of OnlineStoreConfig and OfflineStoreConfig must be provided.")
    if not online_enabled and offline_cfg is None:
        raise InvalidInput("The OnlineStore is disabled and no OfflineStoreConfig was given.")
    ttl = ttl_seconds((online_cfg or {}).get("TtlDuration"), "OnlineStoreConfig.TtlDuration")

    arn = feature_group_arn(region, account, name)
    creation_epoch = int(now)
    spec: dict[str, Any] = {
        "FeatureGroupArn": arn,
        "FeatureGroupName": name,
        "RecordIdentifierFeatureName": record_id,
        "EventTimeFeatureName": event_time,
        "FeatureDefinitions": [feature_definition(f) for f in features.values()],
        "CreationTime": round(now, 3),
        "LastModifiedTime": round(now, 3),
        "FeatureGroupStatus": "Created",
        "ThroughputConfig": _throughput(request.get("ThroughputConfig")),
        "OnlineStoreTotalSizeBytes": 0,
    }
    if online_cfg is not None:
        spec["OnlineStoreConfig"] = _online_config(online_cfg, storage_type)
    if offline_cfg is not None:
        spec["OfflineStoreConfig"] = _offline_config(offline_cfg, name, region, account, creation_epoch)
        spec["OfflineStoreStatus"] = {"Status": "Active"}
    if "Tags" in request:
        spec["Tags"] = merge_tags([], request["Tags"])
    for key, limit in (("RoleArn", 2048), ("Description", 128)):
        if key in request:
            if not isinstance(request[key], str) or len(request[key]) > limit:
                raise InvalidInput(f"{key} must be a string of at most {limit} characters.")
            spec[key] = request[key]
    return FeatureGroup(
        name=name,
        arn=arn,
        record_identifier=record_id,
        event_time=event_time,
        features=features,
        creation_time=now,
        online_enabled=online_enabled,
        offline_enabled=offline_cfg is not None,
        ttl_seconds=ttl,
        spec=spec,
    )


def merge_tags(current: list[dict[str, str]], new: Any) -> list[dict[str, str]]:
    """Tags after AddTags (or CreateFeatureGroup's Tags): a key given again takes its new value."""
    if not isinstance(new, list) or len(new) > 50:
        raise InvalidInput("Tags must be a list of at most 50 tags.")
    merged = {t["Key"]: t["Value"] for t in current}
    for tag in new:
        if not isinstance(tag, dict) or not isinstance(tag.get("Key"), str) or not 1 <= len(tag["Key"]) <= 128 \
                or not isinstance(tag.get("Value", ""), str) or len(tag.get("Value", "")) > 256:
            raise InvalidInput("Each tag needs a Key (1-128 characters) and a Value (at most 256).")
        merged[tag["Key"]] = tag.get("Value", "")
    if len(merged) > 50:
        raise InvalidInput("A resource may have at most 50 tags.")
    return [{"Key": k, "Value": v} for k, v in merged.items()]


def group_from_spec(spec: dict[str, Any]) -> FeatureGroup:
    """Rebuild a stored group (the spec was validated when it was created or updated)."""
    online = spec.get("OnlineStoreConfig") or {}
    storage_type = online.get("StorageType", "Standard")
    features = {
        f["FeatureName"]: parse_feature_definition(f, storage_type, "FeatureDefinitions")
        for f in spec["FeatureDefinitions"]
    }
    return FeatureGroup(
        name=spec["FeatureGroupName"],
        arn=spec["FeatureGroupArn"],
        record_identifier=spec["RecordIdentifierFeatureName"],
        event_time=spec["EventTimeFeatureName"],
        features=features,
        creation_time=float(spec["CreationTime"]),
        online_enabled=bool(online.get("EnableOnlineStore", False)),
        offline_enabled="OfflineStoreConfig" in spec,
        ttl_seconds=ttl_seconds(online.get("TtlDuration")),
        spec=spec,
    )


def feature_definition(feature: Feature) -> dict[str, Any]:
    """A FeatureDefinition as Describe returns it: only the model's members, nothing echoed raw."""
    out: dict[str, Any] = {"FeatureName": feature.name, "FeatureType": feature.type}
    if feature.collection is not None:
        out["CollectionType"] = feature.collection
        if feature.dimension is not None:
            out["CollectionConfig"] = {"VectorConfig": {"Dimension": feature.dimension}}
    return out


def _structure(request: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = request.get(key)
    if value is not None and not isinstance(value, dict):
        raise InvalidInput(f"{key} must be a structure.")
    return value


def _strings(cfg: Any, where: str, keys: tuple[str, ...], required: tuple[str, ...] = ()) -> dict[str, str]:
    """A structure of string members (DataCatalogConfig, SecurityConfig), unknown members dropped."""
    if not isinstance(cfg, dict):
        raise InvalidInput(f"{where} must be a structure.")
    out = {k: cfg[k] for k in keys if k in cfg}
    if any(not isinstance(v, str) or len(v) > 2048 for v in out.values()) or any(k not in out for k in required):
        raise InvalidInput(f"{where} needs string members {', '.join(required or keys)}.")
    return out


def _online_config(cfg: Any, storage_type: str) -> dict[str, Any]:
    if not isinstance(cfg, dict):
        raise InvalidInput("OnlineStoreConfig must be a structure.")
    out: dict[str, Any] = {"EnableOnlineStore": bool(cfg.get("EnableOnlineStore", False))}
    if "SecurityConfig" in cfg:
        out["SecurityConfig"] = _strings(cfg["SecurityConfig"], "OnlineStoreConfig.SecurityConfig", ("KmsKeyId",))
    if "TtlDuration" in cfg:
        out["TtlDuration"] = cfg["TtlDuration"]
    out["StorageType"] = storage_type
    return out


def throughput_update(cfg: Any, current: dict[str, Any]) -> dict[str, Any]:
    return _throughput(cfg, current)


def _offline_config(cfg: Any, name: str, region: str, account: str, epoch: int) -> dict[str, Any]:
    if not isinstance(cfg, dict) or not isinstance(cfg.get("S3StorageConfig"), dict):
        raise InvalidInput("OfflineStoreConfig.S3StorageConfig is required.")
    s3 = cfg["S3StorageConfig"]
    uri = s3.get("S3Uri")
    if not isinstance(uri, str) or _S3_URI.fullmatch(uri) is None:
        raise InvalidInput(f"OfflineStoreConfig.S3StorageConfig.S3Uri '{uri}' is not a valid S3 URI.")
    if not uri.startswith("s3://"):
        raise InvalidInput("The emulator supports only s3:// URIs for S3StorageConfig.S3Uri.")
    try:
        # S3's bucket rules and a key without empty, `.` or `..` segments: the replicated files
        # must land in that bucket (or the local folder mirroring it), nowhere else.
        parse_s3_uri(uri, schemes=("s3",))
    except S3UriError as exc:
        raise InvalidInput(f"OfflineStoreConfig.S3StorageConfig.S3Uri '{uri}' is not a valid S3 URI: {exc}.") from None
    table_format = cfg.get("TableFormat", "Glue")
    if not isinstance(table_format, str):
        raise InvalidInput("OfflineStoreConfig.TableFormat must be Glue or Iceberg.")
    if table_format == "Default":
        table_format = "Glue"
    if table_format not in ("Glue", "Iceberg"):
        raise InvalidInput(f"OfflineStoreConfig.TableFormat '{table_format}' must be Glue or Iceberg.")
    resolved = (
        f"{uri.rstrip('/')}/{account}/sagemaker/{region}/offline-store/{name}-{epoch}/data"
    )
    s3_out: dict[str, Any] = {"S3Uri": uri, "ResolvedOutputS3Uri": resolved}
    if "KmsKeyId" in s3:
        s3_out.update(_strings(s3, "OfflineStoreConfig.S3StorageConfig", ("KmsKeyId",)))
    disable_glue = cfg.get("DisableGlueTableCreation", False)
    if not isinstance(disable_glue, bool):
        raise InvalidInput("OfflineStoreConfig.DisableGlueTableCreation must be a boolean.")
    out: dict[str, Any] = {"S3StorageConfig": s3_out, "DisableGlueTableCreation": disable_glue}
    catalog = cfg.get("DataCatalogConfig")
    # An Iceberg table always has a catalog entry: its metadata pointer lives there.
    if catalog is None and (not disable_glue or table_format == "Iceberg"):
        catalog = {
            "TableName": f"{name.lower().replace('-', '_')}_{epoch}",
            "Catalog": "AwsDataCatalog",
            "Database": "sagemaker_featurestore",
        }
    if catalog is not None:
        keys = ("TableName", "Catalog", "Database")
        out["DataCatalogConfig"] = _strings(catalog, "OfflineStoreConfig.DataCatalogConfig", keys, keys)
    out["TableFormat"] = table_format
    return out


def _throughput(cfg: Any, current: dict[str, Any] | None = None) -> dict[str, Any]:
    """ThroughputConfig (Create) or ThroughputConfigUpdate merged into `current`: model members only."""
    if cfg is None:
        return {"ThroughputMode": "OnDemand"}
    if not isinstance(cfg, dict):
        raise InvalidInput("ThroughputConfig must be a structure.")
    out = dict(current or {})
    mode = cfg.get("ThroughputMode", out.get("ThroughputMode"))
    if not isinstance(mode, str) or mode not in ("OnDemand", "Provisioned"):
        raise InvalidInput("ThroughputConfig.ThroughputMode must be OnDemand or Provisioned.")
    out["ThroughputMode"] = mode
    for key in ("ProvisionedReadCapacityUnits", "ProvisionedWriteCapacityUnits"):
        if key in cfg:
            units = cfg[key]
            if not isinstance(units, int) or isinstance(units, bool) or not 0 <= units <= 40_000:
                raise InvalidInput(f"ThroughputConfig.{key} must be an integer between 0 and 40000.")
            out[key] = units
    return out
