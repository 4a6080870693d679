"""The featurestore runtime operations (REST-JSON): the online store's read and write path."""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from featurestream.dev.feature_store.errors import ApiError, InvalidInput, NotFound, Throttled, check_depth
from featurestream.dev.feature_store.event_time import iso_utc
from featurestream.dev.feature_store.faults import Faults
from featurestream.dev.feature_store.model import FeatureGroup
from featurestream.dev.feature_store.records import (
    Value,
    check_record_identifier,
    event_seconds,
    parse_feature_values,
    target_stores,
    validate_record,
)
from featurestream.dev.feature_store.store import PendingPut, Store, StoredRecord
from featurestream.dev.feature_store.types import ttl_seconds

Query = dict[str, list[str]]
Body = dict[str, Any]

MAX_BATCH_WRITE = 25
MAX_LIST_RESULTS = 100
MAX_UPDATE_FEATURES = 100


class Runtime:
    """One method per operation; each returns the response body (None for an empty 200)."""

    def __init__(self, store: Store, faults: Faults) -> None:
        self.store = store
        self.faults = faults

    # -- writes -----------------------------------------------------------------------------
    def put_record(self, name: str, body: Body) -> Body | None:
        gid, group = self.store.resolve(name)
        now = time.time()
        online, offline = target_stores(group, body.get("TargetStores"))
        record = validate_record(group, body.get("Record"))
        ttl = ttl_seconds(body.get("TtlDuration")) or group.ttl_seconds
        if not self.faults.admit_write(gid, record.record_id):
            raise Throttled(f"Write rate for record identifier '{record.record_id}' exceeded.")
        self.store.put(
            gid, record, online=online, offline=offline,
            expires_at=record.event_time + ttl if ttl else None, api_time=now,
        )
        return None

    def batch_write_record(self, body: Body) -> Body:
        entries = body.get("Entries")
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_BATCH_WRITE:
            raise InvalidInput(f"Entries must hold between 1 and {MAX_BATCH_WRITE} entries.")
        request_ttl = ttl_seconds(body.get("TtlDuration"))
        errors: list[Body] = []
        unprocessed: list[Body] = []
        puts: list[PendingPut] = []
        now = time.time()
        for entry in entries:
            try:
                if not isinstance(entry, dict):
                    raise InvalidInput("Each entry must be a structure.")
                gid, group = self.store.resolve(entry.get("FeatureGroupName"))
                online, offline = target_stores(group, entry.get("TargetStores"))
                record = validate_record(group, entry.get("Record"))
                ttl = ttl_seconds(entry.get("TtlDuration")) or request_ttl or group.ttl_seconds
            except (InvalidInput, NotFound) as exc:
                # The entry is echoed verbatim: clients match it back to what they sent.
                errors.append({"Entry": entry, "ErrorCode": _code(exc), "ErrorMessage": exc.message})
                continue
            if self.faults.skip_entry() or not self.faults.admit_write(gid, record.record_id):
                unprocessed.append(entry)
                continue
            puts.append(PendingPut(gid, record, online, offline, record.event_time + ttl if ttl else None))
        if errors or unprocessed:
            # Echoed verbatim below: refuse (before writing anything) what could not be rendered.
            check_depth([e["Entry"] for e in errors] + unprocessed, "An entry of Entries")
        if puts:
            # All accepted entries commit together, in entry order (so the event-time rule
            # applies between entries for the same record as it would across calls).
            self.store.put_many(puts, now)
        return {"Errors": errors, "UnprocessedEntries": unprocessed}

    def delete_record(self, name: str, query: Query) -> Body | None:
        gid, group = self.store.resolve(name)
        now = time.time()
        record_id = _required(query, "RecordIdentifierValueAsString")
        raw_time = _required(query, "EventTime")
        mode = _single(query, "DeletionMode") or "SoftDelete"
        if mode not in ("SoftDelete", "HardDelete"):
            raise InvalidInput("DeletionMode must be SoftDelete or HardDelete.")
        stores = query.get("TargetStores")
        online, offline = target_stores(group, stores)
        check_record_identifier(record_id, group.record_identifier)
        event_time = event_seconds(group, raw_time)
        self.store.delete(
            gid, group, record_id, event_time, raw_time,
            hard=mode == "HardDelete", online=online, offline=offline, api_time=now,
        )
        return None

    def update_record(self, name: str, body: Body) -> Body | None:
        """Feature-level write to an existing record (StorageType Standard_V2 or InMemory only)."""
        gid, group = self.store.resolve(name)
        now = time.time()
        _require_online(group)
        storage = (group.spec.get("OnlineStoreConfig") or {}).get("StorageType", "Standard")
        if storage not in ("Standard_V2", "InMemory"):
            raise InvalidInput(
                f"UpdateRecord is supported only for StorageType Standard_V2 or InMemory; feature group "
                f"'{group.name}' uses {storage}."
            )
        record_id = body.get("RecordIdentifierValueAsString")
        if not isinstance(record_id, str) or not record_id:
            raise InvalidInput("RecordIdentifierValueAsString is required.")
        check_record_identifier(record_id, group.record_identifier)
        online, offline = target_stores(group, body.get("TargetStores"))
        if not online:
            raise InvalidInput("UpdateRecord must target the OnlineStore.")
        features = body.get("Features")
        if isinstance(features, list) and len(features) > MAX_UPDATE_FEATURES:
            raise InvalidInput(f"Features may hold at most {MAX_UPDATE_FEATURES} feature values.")
        changes = parse_feature_values(group, features, "Features")
        if changes.get(group.record_identifier, record_id) != record_id:
            raise InvalidInput("Features may not change the record identifier.")
        raw_time = changes.get(group.event_time)
        event_time = None
        if isinstance(raw_time, str):
            event_time = event_seconds(group, raw_time)
        ttl = ttl_seconds(body.get("TtlDuration"))
        if ttl is not None and event_time is None:
            raise InvalidInput(f"TtlDuration requires the event time feature '{group.event_time}' in Features.")
        if not self.faults.admit_write(gid, record_id):
            raise Throttled(f"Write rate for record identifier '{record_id}' exceeded.")
        self.store.update(
            gid, group, record_id, changes, event_time, offline=offline,
            expires_at=event_time + ttl if ttl and event_time is not None else None,
            keep_expiry=ttl is None, api_time=now,
        )
        return None

    # -- reads ------------------------------------------------------------------------------
    def get_record(self, name: str, query: Query) -> Body:
        gid, group = self.store.resolve(name)
        _require_online(group)
        record_id = _required(query, "RecordIdentifierValueAsString")
        names = query.get("FeatureName")
        _check_names(group, names)
        stored = self.store.get(gid, record_id)
        if stored is None or not stored.live(time.time()):
            return {}
        return _render(stored, names, _single(query, "ExpirationTimeResponse") == "Enabled")

    def batch_get_record(self, body: Body) -> Body:
        identifiers = body.get("Identifiers")
        if not isinstance(identifiers, list) or not 1 <= len(identifiers) <= 100:
            raise InvalidInput("Identifiers must hold between 1 and 100 identifiers.")
        with_expiry = body.get("ExpirationTimeResponse") == "Enabled"
        records: list[Body] = []
        errors: list[Body] = []
        unprocessed: list[Body] = []
        now = time.time()
        for ident in identifiers:
            if not isinstance(ident, dict):
                raise InvalidInput("Each identifier must be a structure.")
            fg_name = ident.get("FeatureGroupName")
            if not isinstance(fg_name, str):
                raise InvalidInput("Each identifier needs a FeatureGroupName.")
            ids = ident.get("RecordIdentifiersValueAsString")
            if not isinstance(ids, list) or not 1 <= len(ids) <= 100 or not all(isinstance(i, str) for i in ids):
                raise InvalidInput("RecordIdentifiersValueAsString must hold between 1 and 100 strings.")
            names = ident.get("FeatureNames")
            try:
                gid, group = self.store.resolve(fg_name)
                _require_online(group)
                _check_names(group, names)
            except (InvalidInput, NotFound) as exc:
                errors.extend(
                    {"FeatureGroupName": fg_name, "RecordIdentifierValueAsString": rid,
                     "ErrorCode": _code(exc), "ErrorMessage": exc.message}
                    for rid in ids
                )
                continue
            skipped: list[str] = []
            for rid in ids:
                if self.faults.skip_entry():
                    skipped.append(rid)
                    continue
                stored = self.store.get(gid, str(rid))
                if stored is not None and stored.live(now):
                    item = {"FeatureGroupName": fg_name, "RecordIdentifierValueAsString": rid}
                    item.update(_render(stored, names, with_expiry))
                    records.append(item)
            if skipped:
                left: Body = {"FeatureGroupName": fg_name, "RecordIdentifiersValueAsString": skipped}
                if names is not None:
                    left["FeatureNames"] = names
                unprocessed.append(left)
        return {"Records": records, "Errors": errors, "UnprocessedIdentifiers": unprocessed}

    def list_records(self, name: str, body: Body) -> Body:
        gid, group = self.store.resolve(name)
        _require_online(group)
        limit = body.get("MaxResults", MAX_LIST_RESULTS)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIST_RESULTS:
            raise InvalidInput(f"MaxResults must be between 1 and {MAX_LIST_RESULTS}.")
        after = _decode_token(body.get("NextToken"))
        ids = self.store.list_ids(
            gid, after, limit + 1, bool(body.get("IncludeSoftDeletedRecords", False)), time.time()
        )
        out: Body = {"RecordIdentifiers": ids[:limit]}
        if len(ids) > limit:
            out["NextToken"] = base64.urlsafe_b64encode(ids[limit - 1].encode()).decode()
        return out


def _render(stored: StoredRecord, names: list[str] | None, with_expiry: bool) -> Body:
    wanted = None if names is None else set(names)
    record = [
        _feature_value(name, value)
        for name, value in stored.values.items()
        if wanted is None or name in wanted
    ]
    out: Body = {"Record": record}
    if with_expiry and stored.expires_at is not None:
        out["ExpiresAt"] = iso_utc(stored.expires_at)
    return out


def _feature_value(name: str, value: Value) -> Body:
    if isinstance(value, list):
        return {"FeatureName": name, "ValueAsStringList": value}
    return {"FeatureName": name, "ValueAsString": value}


def _check_names(group: FeatureGroup, names: Any) -> None:
    if names is None:
        return
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise InvalidInput("FeatureNames must list at least one feature name.")
    for name in names:
        group.feature(name)


def _require_online(group: FeatureGroup) -> None:
    if not group.online_enabled:
        raise InvalidInput(f"OnlineStore is not enabled for feature group '{group.name}'.")


def _single(query: Query, key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


def _required(query: Query, key: str) -> str:
    value = _single(query, key)
    if value is None:
        raise InvalidInput(f"{key} is required.")
    return value


def _decode_token(token: Any) -> str | None:
    if token is None:
        return None
    try:
        return base64.urlsafe_b64decode(str(token).encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("NextToken is not valid.") from exc


def _code(exc: ApiError) -> str:
    return "ResourceNotFound" if isinstance(exc, NotFound) else "ValidationError"

