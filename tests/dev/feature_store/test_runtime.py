"""Runtime: PutRecord / GetRecord, validation, the event-time rule, TTL, target stores, name-or-ARN."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.dev.feature_store.helpers import as_dict, record

pytestmark = pytest.mark.feature_store

T0 = "2024-05-01T10:00:00Z"
T1 = "2024-05-01T11:00:00.250Z"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def get(rt: Any, fg: str, rid: str, **kwargs: Any) -> dict[str, Any] | None:
    resp = rt.get_record(FeatureGroupName=fg, RecordIdentifierValueAsString=rid, **kwargs)
    return as_dict(resp["Record"]) if "Record" in resp else None


def test_put_then_get_round_trip_by_name_and_arn(rt: Any, make_group: Any) -> None:
    desc = make_group()
    name, arn = desc["FeatureGroupName"], desc["FeatureGroupArn"]
    values = {"id": "user-1", "ts": T0, "n": "-42", "x": "1.7E9", "s": "héllo, wörld"}
    rt.put_record(FeatureGroupName=arn, Record=record(**values))
    assert get(rt, name, "user-1") == values
    assert get(rt, arn, "user-1") == values
    # Records are full overwrites: a newer write without `s` drops it.
    rt.put_record(FeatureGroupName=name, Record=record(id="user-1", ts=T1, n=1))
    assert get(rt, arn, "user-1") == {"id": "user-1", "ts": T1, "n": "1"}


def test_get_missing_record_returns_no_record(rt: Any, make_group: Any) -> None:
    desc = make_group()
    resp = rt.get_record(FeatureGroupName=desc["FeatureGroupName"], RecordIdentifierValueAsString="ghost")
    assert "Record" not in resp
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_get_feature_names_filter(rt: Any, make_group: Any) -> None:
    name = make_group()["FeatureGroupName"]
    rt.put_record(FeatureGroupName=name, Record=record(id="a", ts=T0, n=1, x=2.5, s="z"))
    assert get(rt, name, "a", FeatureNames=["x", "s"]) == {"x": "2.5", "s": "z"}
    with pytest.raises(rt.exceptions.ValidationError) as info:
        rt.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="a", FeatureNames=["nope"])
    assert "nope" in str(info.value)


def test_unknown_feature_group_is_resource_not_found(rt: Any) -> None:
    with pytest.raises(rt.exceptions.ResourceNotFound) as info:
        rt.put_record(FeatureGroupName="no-such-group", Record=record(id="a", ts=T0))
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"id": "a", "ts": T0, "n": "1.5"}, "'n'"),
        ({"id": "a", "ts": T0, "n": "12abc"}, "'n'"),
        ({"id": "a", "ts": T0, "n": str(2**63)}, "'n'"),
        ({"id": "a", "ts": T0, "x": "abc"}, "'x'"),
        ({"id": "a", "ts": T0, "x": "1_000"}, "'x'"),
        ({"ts": T0, "n": "1"}, "record identifier"),
        ({"id": "a", "n": "1"}, "event time"),
        ({"id": "a", "ts": "2024-05-01 10:00:00"}, "EventTime"),
        ({"id": "a", "ts": "2024-05-01T10:00:00"}, "EventTime"),
        ({"id": "a", "ts": "2024-02-30T10:00:00Z"}, "EventTime"),
        ({"id": "a", "ts": "1714557600"}, "EventTime"),
        ({"id": "a", "ts": T0, "undefined": "v"}, "undefined"),
    ],
)
def test_put_validation_errors_name_the_feature(
    rt: Any, make_group: Any, values: dict[str, str], needle: str
) -> None:
    name = make_group()["FeatureGroupName"]
    with pytest.raises(rt.exceptions.ValidationError) as info:
        rt.put_record(FeatureGroupName=name, Record=record(**values))
    assert needle in info.value.response["Error"]["Message"]
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert get(rt, name, "a") is None


def test_duplicate_feature_and_empty_record_are_rejected(rt_raw: Any, make_group: Any) -> None:
    name = make_group()["FeatureGroupName"]
    for bad in (record(id="a", ts=T0) + record(id="b"), []):
        with pytest.raises(rt_raw.exceptions.ValidationError):
            rt_raw.put_record(FeatureGroupName=name, Record=bad)


def test_record_size_limit_350_kb(rt: Any, make_group: Any) -> None:
    name = make_group()["FeatureGroupName"]
    rt.put_record(FeatureGroupName=name, Record=record(id="ok", ts=T0, s="v" * (340 * 1024)))
    assert len(get(rt, name, "ok")["s"]) == 340 * 1024  # type: ignore[index]
    with pytest.raises(rt.exceptions.ValidationError) as info:
        rt.put_record(FeatureGroupName=name, Record=record(id="big", ts=T0, s="v" * (350 * 1024)))
    assert "350 KB" in str(info.value)


def test_event_time_rule(rt: Any, make_group: Any) -> None:
    """Newer EventTime replaces the online record; older or equal leaves it (offline only)."""
    name = make_group()["FeatureGroupName"]
    rt.put_record(FeatureGroupName=name, Record=record(id="e", ts="2024-05-01T10:00:00.500Z", n=1))
    rt.put_record(FeatureGroupName=name, Record=record(id="e", ts="2024-05-01T10:00:00.499Z", n=2))
    assert get(rt, name, "e")["n"] == "1"  # type: ignore[index]
    rt.put_record(FeatureGroupName=name, Record=record(id="e", ts="2024-05-01T10:00:00.500Z", n=3))
    assert get(rt, name, "e")["n"] == "1"  # type: ignore[index]
    # The same instant written with an offset is still "equal".
    rt.put_record(FeatureGroupName=name, Record=record(id="e", ts="2024-05-01T12:00:00.500+02:00", n=4))
    assert get(rt, name, "e")["n"] == "1"  # type: ignore[index]
    rt.put_record(FeatureGroupName=name, Record=record(id="e", ts="2024-05-01T10:00:00.501Z", n=5))
    assert get(rt, name, "e")["n"] == "5"  # type: ignore[index]


def test_fractional_event_time(rt: Any, make_group: Any) -> None:
    features = [
        {"FeatureName": "id", "FeatureType": "Integral"},
        {"FeatureName": "et", "FeatureType": "Fractional"},
        {"FeatureName": "v", "FeatureType": "String"},
    ]
    name = make_group(features, event_time="et")["FeatureGroupName"]
    rt.put_record(FeatureGroupName=name, Record=record(id=7, et="1.7E9", v="a"))
    rt.put_record(FeatureGroupName=name, Record=record(id=7, et="1699999999.999", v="old"))
    rt.put_record(FeatureGroupName=name, Record=record(id=7, et="1700000000.001", v="new"))
    assert get(rt, name, "7") == {"id": "7", "et": "1700000000.001", "v": "new"}
    with pytest.raises(rt.exceptions.ValidationError):
        rt.put_record(FeatureGroupName=name, Record=record(id=7, et=T0))


@pytest.mark.clock  # EventTimes an hour or two before now, expired or not by the TTL
def test_ttl_group_level_and_record_override(rt: Any, make_group: Any) -> None:
    name = make_group(online={"EnableOnlineStore": True, "TtlDuration": {"Unit": "Hours", "Value": 1}})[
        "FeatureGroupName"
    ]
    now = datetime.now(UTC).replace(microsecond=0)
    two_hours_ago = iso(now - timedelta(hours=2))
    rt.put_record(FeatureGroupName=name, Record=record(id="expired", ts=two_hours_ago))
    assert get(rt, name, "expired") is None

    rt.put_record(FeatureGroupName=name, Record=record(id="fresh", ts=iso(now)))
    resp = rt.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="fresh",
                         ExpirationTimeResponse="Enabled")
    assert resp["ExpiresAt"] == (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    plain = rt.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="fresh")
    assert "ExpiresAt" not in plain

    # A record-level TTL overrides the group's: 3 hours keeps the 2-hour-old record alive.
    rt.put_record(FeatureGroupName=name, Record=record(id="kept", ts=two_hours_ago),
                  TtlDuration={"Unit": "Hours", "Value": 3})
    assert get(rt, name, "kept") is not None
    # ...and a short one expires a fresh record.
    rt.put_record(FeatureGroupName=name, Record=record(id="short", ts=iso(now - timedelta(seconds=5))),
                  TtlDuration={"Unit": "Seconds", "Value": 1})
    assert get(rt, name, "short") is None
    # An expired record no longer blocks an older write: it is gone from the online store.
    rt.put_record(FeatureGroupName=name, Record=record(id="expired", ts=iso(now - timedelta(minutes=30))))
    assert get(rt, name, "expired") is not None


def test_target_stores(rt: Any, rt_raw: Any, make_group: Any) -> None:
    name = make_group()["FeatureGroupName"]
    rt.put_record(FeatureGroupName=name, Record=record(id="off", ts=T0), TargetStores=["OfflineStore"])
    assert get(rt, name, "off") is None
    rt.put_record(FeatureGroupName=name, Record=record(id="on", ts=T0), TargetStores=["OnlineStore"])
    assert get(rt, name, "on") is not None
    with pytest.raises(rt_raw.exceptions.ValidationError):
        rt_raw.put_record(FeatureGroupName=name, Record=record(id="x", ts=T0), TargetStores=["Elsewhere"])

    offline_only = make_group(online={"EnableOnlineStore": False})["FeatureGroupName"]
    rt.put_record(FeatureGroupName=offline_only, Record=record(id="a", ts=T0))
    with pytest.raises(rt.exceptions.ValidationError):
        rt.put_record(FeatureGroupName=offline_only, Record=record(id="a", ts=T0), TargetStores=["OnlineStore"])
    with pytest.raises(rt.exceptions.ValidationError):
        rt.get_record(FeatureGroupName=offline_only, RecordIdentifierValueAsString="a")

    online_only = make_group(offline=False)["FeatureGroupName"]
    with pytest.raises(rt.exceptions.ValidationError):
        rt.put_record(FeatureGroupName=online_only, Record=record(id="a", ts=T0), TargetStores=["OfflineStore"])


def test_collections_on_in_memory_tier(rt: Any, make_group: Any) -> None:
    features = [
        {"FeatureName": "id", "FeatureType": "String"},
        {"FeatureName": "ts", "FeatureType": "String"},
        {"FeatureName": "tags", "FeatureType": "String", "CollectionType": "List"},
        {"FeatureName": "emb", "FeatureType": "Fractional", "CollectionType": "Vector",
         "CollectionConfig": {"VectorConfig": {"Dimension": 3}}},
    ]
    name = make_group(features, online={"EnableOnlineStore": True, "StorageType": "InMemory"},
                      offline=False)["FeatureGroupName"]
    rec = [
        *record(id="c", ts=T0),
        {"FeatureName": "tags", "ValueAsStringList": ["a", "b"]},
        {"FeatureName": "emb", "ValueAsStringList": ["0.1", "0.2", "0.3"]},
    ]
    rt.put_record(FeatureGroupName=name, Record=rec)
    assert get(rt, name, "c") == {"id": "c", "ts": T0, "tags": ["a", "b"], "emb": ["0.1", "0.2", "0.3"]}
    bad = [*record(id="c", ts=T1), {"FeatureName": "emb", "ValueAsStringList": ["0.1"]}]
    with pytest.raises(rt.exceptions.ValidationError) as info:
        rt.put_record(FeatureGroupName=name, Record=bad)
    assert "emb" in str(info.value)


def test_runtime_error_wire_shape(emulator: Any) -> None:
    """rest-json errors: x-amzn-ErrorType header and __type in the body, as the SDKs parse them."""
    import json
    import urllib.error
    import urllib.request

    req = urllib.request.Request(emulator.url + "/FeatureGroup/nothing-here?RecordIdentifierValueAsString=a")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req)
    assert info.value.code == 404
    assert info.value.headers["x-amzn-ErrorType"] == "ResourceNotFound"
    body = json.loads(info.value.read())
    assert body["__type"] == "ResourceNotFound" and body["Message"]


def test_put_record_is_fast_enough_for_a_smoke_loop(rt: Any, make_group: Any) -> None:
    """A sanity bound, not the benchmark: 300 sequential puts within a few seconds."""
    name = make_group()["FeatureGroupName"]
    start = time.perf_counter()
    for i in range(300):
        rt.put_record(FeatureGroupName=name, Record=record(id=f"r{i}", ts=T0, n=i))
    assert time.perf_counter() - start < 10
