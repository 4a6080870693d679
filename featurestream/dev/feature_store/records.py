"""Validation of the records that clients write, against their feature group's definitions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from featurestream.dev.feature_store.errors import InvalidInput
from featurestream.dev.feature_store.event_time import parse_event_time
from featurestream.dev.feature_store.model import Feature, FeatureGroup
from featurestream.dev.feature_store.types import FRACTIONAL, MAX_RECORD_BYTES, check_scalar

Value = str | list[str]

ONLINE = "OnlineStore"
OFFLINE = "OfflineStore"
# Quotas page: "Maximum size of a record identifier: 2 KB" (counted here in UTF-8 bytes).
MAX_RECORD_IDENTIFIER_BYTES = 2 * 1024
_UNKNOWN = object()


@dataclass(frozen=True)
class ValidRecord:
    """A record that passed every check; `values` maps feature name to its wire value."""

    record_id: str
    event_time: float
    values: dict[str, Value]


def validate_record(group: FeatureGroup, record: Any, where: str = "Record") -> ValidRecord:
    """Check a Record (list of FeatureValue) the way the runtime does; errors name the feature."""
    values = parse_feature_values(group, record, where)
    record_id = values.get(group.record_identifier)
    if not isinstance(record_id, str) or record_id == "":
        raise InvalidInput(
            f"{where} is missing the record identifier feature '{group.record_identifier}'."
        )
    check_record_identifier(record_id, group.record_identifier)
    raw_time = values.get(group.event_time)
    if not isinstance(raw_time, str):
        raise InvalidInput(f"{where} is missing the event time feature '{group.event_time}'.")
    return ValidRecord(record_id=record_id, event_time=event_seconds(group, raw_time), values=values)


def check_record_identifier(record_id: str, name: str) -> None:
    """The 2 KB quota; the value must also be storable (UTF-8: no lone surrogate)."""
    if len(record_id) * 4 <= MAX_RECORD_IDENTIFIER_BYTES:
        return  # cannot be too long, and the request body was already checked for surrogates
    try:
        size = len(record_id.encode())
    except UnicodeEncodeError:
        raise InvalidInput(f"The record identifier '{name}' is not valid Unicode.") from None
    if size > MAX_RECORD_IDENTIFIER_BYTES:
        raise InvalidInput(
            f"The record identifier '{name}' is {size} bytes, above the {MAX_RECORD_IDENTIFIER_BYTES} "
            "byte (2 KB) limit."
        )


def event_seconds(group: FeatureGroup, raw_time: str) -> float:
    """The group's EventTime value as Unix seconds (ValidationError outside AWS's range)."""
    return parse_event_time(group.event_time, group.features[group.event_time].type == FRACTIONAL, raw_time)


def parse_feature_values(group: FeatureGroup, record: Any, where: str) -> dict[str, Value]:
    """FeatureValue list -> {name: value}, type-checked, within the 350 KB record limit.

    This runs for every record written, so the common case (a scalar feature with a
    ValueAsString) takes a short path; anything else goes through `_feature_value`.
    """
    if type(record) is not list or not record:
        raise InvalidInput(f"{where} must contain at least one FeatureValue.")
    features = group.features
    checks = group.scalar_checks
    values: dict[str, Value] = {}
    chars = 0
    for item in record:
        name = item.get("FeatureName") if type(item) is dict else None
        if type(name) is not str:
            raise InvalidInput(f"Every FeatureValue in {where} needs a FeatureName.")
        if name in values:  # known: it was looked up the first time
            raise InvalidInput(f"Feature '{name}' appears more than once in {where}.")
        scalar = item.get("ValueAsString")
        quick = checks.get(name, _UNKNOWN)
        if quick is not _UNKNOWN and type(scalar) is str and "ValueAsStringList" not in item:
            if quick is not None and quick(scalar) is None:  # type: ignore[operator]
                check_scalar(name, features[name].type, scalar)
            value: Value = scalar
            chars += len(name) + len(scalar)
        else:
            # An unknown name (ValidationError), a collection, or a value of the wrong shape.
            value = _feature_value(features.get(name) or group.feature(name), item)
            chars += len(name) + sum(len(v) for v in value)
        values[name] = value
    # A UTF-8 character takes at most 4 bytes: count exactly only when it could matter.
    if chars * 4 > MAX_RECORD_BYTES:
        size = sum(len(k.encode()) + _value_bytes(v) for k, v in values.items())
        if size > MAX_RECORD_BYTES:
            raise InvalidInput(f"{where} is {size} bytes, above the {MAX_RECORD_BYTES} byte (350 KB) limit.")
    return values


def _value_bytes(value: Value) -> int:
    return len(value.encode()) if isinstance(value, str) else sum(len(v.encode()) for v in value)


def target_stores(group: FeatureGroup, raw: Any) -> tuple[bool, bool]:
    """(write online, write offline) for an optional TargetStores list."""
    if raw is None:
        return group.online_enabled, group.offline_enabled
    if not isinstance(raw, list) or not raw or any(s not in (ONLINE, OFFLINE) for s in raw):
        raise InvalidInput("TargetStores must list OnlineStore and/or OfflineStore.")
    if len(set(raw)) != len(raw):
        raise InvalidInput("TargetStores contains a duplicate store.")
    online, offline = ONLINE in raw, OFFLINE in raw
    if online and not group.online_enabled:
        raise InvalidInput(f"OnlineStore is not enabled for feature group '{group.name}'.")
    if offline and not group.offline_enabled:
        raise InvalidInput(f"OfflineStore is not enabled for feature group '{group.name}'.")
    return online, offline


def _feature_value(feature: Feature, item: dict[str, Any]) -> Value:
    scalar, many = item.get("ValueAsString"), item.get("ValueAsStringList")
    if feature.collection is None:
        if many is not None or not isinstance(scalar, str):
            raise InvalidInput(f"Feature '{feature.name}' needs a ValueAsString.")
        check_scalar(feature.name, feature.type, scalar)
        return scalar
    if scalar is not None or not isinstance(many, list) or not all(isinstance(v, str) for v in many):
        raise InvalidInput(f"Feature '{feature.name}' is a {feature.collection} and needs a ValueAsStringList.")
    for element in many:
        check_scalar(feature.name, feature.type, element)
    if feature.collection == "Vector" and len(many) != feature.dimension:
        raise InvalidInput(
            f"Feature '{feature.name}' is a Vector of dimension {feature.dimension}, got {len(many)} values."
        )
    if feature.collection == "Set" and len(set(many)) != len(many):
        raise InvalidInput(f"Feature '{feature.name}' is a Set and holds duplicate values.")
    return list(many)
