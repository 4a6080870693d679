"""The SageMaker control-plane operations for feature groups (JSON 1.1, X-Amz-Target), and the
lineage operations of `lineage.py` through the same dispatch."""

from __future__ import annotations

import base64
import binascii
import copy
import json
import time
from collections.abc import Callable
from typing import Any

from featurestream.dev.feature_store.errors import InvalidInput, UnknownOperation
from featurestream.dev.feature_store.lineage import LineageApi
from featurestream.dev.feature_store.model import (
    MAX_FEATURES,
    FeatureGroup,
    build_feature_group,
    feature_definition,
    group_from_spec,
    merge_tags,
    parse_feature_definition,
    throughput_update,
)
from featurestream.dev.feature_store.store import Store
from featurestream.dev.feature_store.types import is_valid_name, request_timestamp, ttl_seconds

Body = dict[str, Any]

_SORT_KEYS: dict[str, Callable[[Body], Any]] = {
    "Name": lambda s: s["FeatureGroupName"],
    "FeatureGroupStatus": lambda s: s["FeatureGroupStatus"],
    "OfflineStoreStatus": lambda s: (s.get("OfflineStoreStatus") or {}).get("Status", ""),
    "CreationTime": lambda s: s["CreationTime"],
}


def _always_writable(uri: str) -> None:
    """Without a sink to ask, every offline location is taken as writable."""


def _always_active(gid: int) -> dict[str, str]:
    return {"Status": "Active"}


def _no_table(group: FeatureGroup) -> None:
    """Without a catalog, no table is registered for a new group."""


class ControlPlane:
    def __init__(
        self,
        store: Store,
        region: str,
        account: str,
        check_location: Callable[[str], None] = _always_writable,
        offline_status: Callable[[int], dict[str, str]] = _always_active,
        create_offline_table: Callable[[FeatureGroup], None] = _no_table,
        lineage: LineageApi | None = None,
    ) -> None:
        self.store = store
        self.region = region
        self.account = account
        # AWS checks the offline store's S3 location when the group is created (a missing bucket
        # fails CreateFeatureGroup); `check_location` raises InvalidInput, i.e. ValidationException:
        # the error every SageMaker operation uses for a request it cannot accept. ResourceNotFound
        # names SageMaker resources (the model lists it for none of CreateFeatureGroup's errors).
        self.check_location = check_location
        self.offline_status = offline_status
        # The table SageMaker creates with the group (an Iceberg table in the catalog); its failure
        # fails CreateFeatureGroup.
        self.create_offline_table = create_offline_table
        self._ops: dict[str, Callable[[Body], Body | None]] = {
            "CreateFeatureGroup": self.create_feature_group,
            "DescribeFeatureGroup": self.describe_feature_group,
            "ListFeatureGroups": self.list_feature_groups,
            "DeleteFeatureGroup": self.delete_feature_group,
            "UpdateFeatureGroup": self.update_feature_group,
            "DescribeFeatureMetadata": self.describe_feature_metadata,
            "AddTags": self.add_tags,
            "ListTags": self.list_tags,
        }
        if lineage is not None:
            self._ops.update(lineage.operations)

    def dispatch(self, operation: str, body: Body) -> Body | None:
        handler = self._ops.get(operation)
        if handler is None:
            raise UnknownOperation(f"Operation SageMaker.{operation} is not supported by the emulator.")
        return handler(body)

    def create_feature_group(self, body: Body) -> Body:
        group = build_feature_group(body, self.region, self.account, time.time())
        offline = group.spec.get("OfflineStoreConfig")
        if offline is not None and not self.store.name_taken(group.name):  # ResourceInUse comes first
            self.check_location(offline["S3StorageConfig"]["S3Uri"])
            self.create_offline_table(group)
        self.store.create_group(group)
        return {"FeatureGroupArn": group.arn}

    def describe_feature_group(self, body: Body) -> Body:
        gid, group = self.store.resolve(body.get("FeatureGroupName"))
        out = group.describe()
        if group.offline_enabled:
            out["OfflineStoreStatus"] = self.offline_status(gid)
        out["OnlineStoreTotalSizeBytes"] = self.store.online_size_bytes(gid) if group.online_enabled else 0
        return out

    def describe_feature_metadata(self, body: Body) -> Body:
        _, group = self.store.resolve(body.get("FeatureGroupName"))
        feature = group.feature(str(body.get("FeatureName")))
        return {
            "FeatureGroupArn": group.arn,
            "FeatureGroupName": group.name,
            "FeatureName": feature.name,
            "FeatureType": feature.type,
            "CreationTime": group.spec["CreationTime"],
            "LastModifiedTime": group.spec["LastModifiedTime"],
            "Parameters": [],
        }

    def add_tags(self, body: Body) -> Body:
        """AddTags on a feature group's ARN (the only resource the emulator has)."""
        gid, group = self.store.resolve(body.get("ResourceArn"))
        spec = copy.deepcopy(group.spec)
        spec["Tags"] = merge_tags(spec.get("Tags", []), body.get("Tags"))
        self.store.replace_group(gid, group_from_spec(spec))
        return {"Tags": spec["Tags"]}

    def list_tags(self, body: Body) -> Body:
        _, group = self.store.resolve(body.get("ResourceArn"))
        return {"Tags": copy.deepcopy(group.spec.get("Tags", []))}

    def delete_feature_group(self, body: Body) -> None:
        name = body.get("FeatureGroupName")
        if not is_valid_name(name):
            raise InvalidInput(f"FeatureGroupName '{name}' is not a valid feature group name.")
        gid, _ = self.store.resolve(name)
        self.store.delete_group(gid)

    def update_feature_group(self, body: Body) -> Body:
        gid, group = self.store.resolve(body.get("FeatureGroupName"))
        spec = copy.deepcopy(group.spec)
        additions = body.get("FeatureAdditions")
        if additions is not None:
            if not isinstance(additions, list) or not 1 <= len(additions) <= 100:
                raise InvalidInput("FeatureAdditions must hold between 1 and 100 feature definitions.")
            storage = (spec.get("OnlineStoreConfig") or {}).get("StorageType", "Standard")
            existing = {n.lower() for n in group.features}
            added = []
            for i, raw in enumerate(additions):
                feat = parse_feature_definition(raw, storage, f"FeatureAdditions[{i}]")
                if feat.name.lower() in existing:
                    raise InvalidInput(f"Feature '{feat.name}' already exists in feature group '{group.name}'.")
                existing.add(feat.name.lower())
                added.append(feat)
            if len(existing) > MAX_FEATURES:
                raise InvalidInput(f"A feature group may hold at most {MAX_FEATURES} features.")
            spec["FeatureDefinitions"] = spec["FeatureDefinitions"] + [feature_definition(f) for f in added]
        online_update = body.get("OnlineStoreConfig")
        if online_update is not None:
            if not isinstance(online_update, dict):
                raise InvalidInput("OnlineStoreConfig must be a structure.")
            if "OnlineStoreConfig" not in spec or not group.online_enabled:
                raise InvalidInput(f"OnlineStore is not enabled for feature group '{group.name}'.")
            if "TtlDuration" in online_update:
                ttl_seconds(online_update["TtlDuration"], "OnlineStoreConfig.TtlDuration")
                spec["OnlineStoreConfig"]["TtlDuration"] = online_update["TtlDuration"]
        throughput = body.get("ThroughputConfig")
        if throughput is not None:
            spec["ThroughputConfig"] = throughput_update(throughput, spec.get("ThroughputConfig", {}))
        spec["LastModifiedTime"] = round(time.time(), 3)
        spec["LastUpdateStatus"] = {"Status": "Successful"}
        self.store.replace_group(gid, group_from_spec(spec))
        return {"FeatureGroupArn": group.arn}

    def list_feature_groups(self, body: Body) -> Body:
        limit = body.get("MaxResults", 10)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 100:
            raise InvalidInput("MaxResults must be between 1 and 100.")
        sort_by = body.get("SortBy", "CreationTime")
        order = body.get("SortOrder", "Descending")
        if not isinstance(sort_by, str) or sort_by not in _SORT_KEYS or order not in ("Ascending", "Descending"):
            raise InvalidInput("SortBy or SortOrder is not valid.")
        summaries = []
        for gid, group in self.store.live_items():
            summary = group.summary()
            if group.offline_enabled:
                summary["OfflineStoreStatus"] = self.offline_status(gid)
            summaries.append(summary)
        contains = body.get("NameContains")
        if contains:
            summaries = [s for s in summaries if str(contains).lower() in s["FeatureGroupName"].lower()]
        if body.get("FeatureGroupStatusEquals"):
            summaries = [s for s in summaries if s["FeatureGroupStatus"] == body["FeatureGroupStatusEquals"]]
        if body.get("OfflineStoreStatusEquals"):
            summaries = [
                s for s in summaries
                if (s.get("OfflineStoreStatus") or {}).get("Status") == body["OfflineStoreStatusEquals"]
            ]
        after = request_timestamp(body.get("CreationTimeAfter"))
        before = request_timestamp(body.get("CreationTimeBefore"))
        if after is not None:
            summaries = [s for s in summaries if s["CreationTime"] > after]
        if before is not None:
            summaries = [s for s in summaries if s["CreationTime"] < before]
        summaries.sort(
            key=lambda s: (_SORT_KEYS[sort_by](s), s["FeatureGroupName"]), reverse=order == "Descending"
        )
        start = _decode_offset(body.get("NextToken"))
        page = summaries[start : start + limit]
        out: Body = {"FeatureGroupSummaries": page}
        if start + limit < len(summaries):
            out["NextToken"] = base64.urlsafe_b64encode(json.dumps({"o": start + limit}).encode()).decode()
        return out


def _decode_offset(token: Any) -> int:
    if token in (None, ""):
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(str(token).encode()))["o"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise InvalidInput("NextToken is not valid.") from exc
    if not isinstance(offset, int) or offset < 0:
        raise InvalidInput("NextToken is not valid.")
    return offset
