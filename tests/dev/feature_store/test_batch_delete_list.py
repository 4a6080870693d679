"""Runtime: BatchWriteRecord, BatchGetRecord, DeleteRecord (soft/hard), ListRecords, UpdateRecord."""

from __future__ import annotations

from typing import Any

import pytest

from tests.dev.feature_store.helpers import as_dict, record

pytestmark = pytest.mark.feature_store

T0 = "2024-05-01T10:00:00Z"
T1 = "2024-05-01T11:00:00Z"
T2 = "2024-05-01T12:00:00Z"


def get(rt: Any, fg: str, rid: str) -> dict[str, Any] | None:
    resp = rt.get_record(FeatureGroupName=fg, RecordIdentifierValueAsString=rid)
    return as_dict(resp["Record"]) if "Record" in resp else None


def test_batch_write_25_entries_across_groups(rt: Any, make_group: Any) -> None:
    a, b = make_group(), make_group()
    entries = [
        {"FeatureGroupName": (a if i % 2 else b)["FeatureGroupArn" if i % 3 else "FeatureGroupName"],
         "Record": record(id=f"k{i}", ts=T0, n=i)}
        for i in range(25)
    ]
    resp = rt.batch_write_record(Entries=entries)
    assert resp["Errors"] == [] and resp["UnprocessedEntries"] == []
    for i in range(25):
        group = (a if i % 2 else b)["FeatureGroupName"]
        assert get(rt, group, f"k{i}") == {"id": f"k{i}", "ts": T0, "n": str(i)}


def test_batch_write_per_entry_errors_echo_the_entry(rt: Any, make_group: Any) -> None:
    name = make_group()["FeatureGroupName"]
    good = {"FeatureGroupName": name, "Record": record(id="good", ts=T0, n=1)}
    bad_type = {"FeatureGroupName": name, "Record": record(id="bad", ts=T0, n="one")}
    missing = {"FeatureGroupName": "no-such-group", "Record": record(id="m", ts=T0)}
    resp = rt.batch_write_record(Entries=[good, bad_type, missing])
    assert resp["UnprocessedEntries"] == []
    errors = {e["ErrorCode"]: e for e in resp["Errors"]}
    assert set(errors) == {"ValidationError", "ResourceNotFound"}
    assert errors["ValidationError"]["Entry"] == bad_type
    assert "'n'" in errors["ValidationError"]["ErrorMessage"]
    assert errors["ResourceNotFound"]["Entry"] == missing
    assert get(rt, name, "good") is not None
    assert get(rt, name, "bad") is None


def test_batch_write_entry_count_limits(rt_raw: Any, make_group: Any) -> None:
    name = make_group()["FeatureGroupName"]
    too_many = [{"FeatureGroupName": name, "Record": record(id=f"k{i}", ts=T0)} for i in range(26)]
    for entries in (too_many, []):
        with pytest.raises(rt_raw.exceptions.ValidationError):
            rt_raw.batch_write_record(Entries=entries)
    assert get(rt_raw, name, "k0") is None


def test_batch_write_ttl_request_and_entry_level(rt: Any, make_group: Any) -> None:
    name = make_group()["FeatureGroupName"]
    old = "2020-01-01T00:00:00Z"
    resp = rt.batch_write_record(
        Entries=[
            {"FeatureGroupName": name, "Record": record(id="req-ttl", ts=old)},
            {"FeatureGroupName": name, "Record": record(id="entry-ttl", ts=old),
             "TtlDuration": {"Unit": "Weeks", "Value": 5200}},
        ],
        TtlDuration={"Unit": "Days", "Value": 1},
    )
    assert resp["Errors"] == []
    assert get(rt, name, "req-ttl") is None
    assert get(rt, name, "entry-ttl") is not None


def test_batch_get_record(rt: Any, make_group: Any) -> None:
    a, b = make_group(), make_group()
    rt.put_record(FeatureGroupName=a["FeatureGroupName"], Record=record(id="1", ts=T0, n=1, s="x"))
    rt.put_record(FeatureGroupName=a["FeatureGroupName"], Record=record(id="2", ts=T0, n=2, s="y"))
    rt.put_record(FeatureGroupName=b["FeatureGroupName"], Record=record(id="1", ts=T0, n=10))
    resp = rt.batch_get_record(
        Identifiers=[
            {"FeatureGroupName": a["FeatureGroupArn"], "RecordIdentifiersValueAsString": ["1", "2", "ghost"],
             "FeatureNames": ["n"]},
            {"FeatureGroupName": b["FeatureGroupName"], "RecordIdentifiersValueAsString": ["1"]},
            {"FeatureGroupName": "no-such-group", "RecordIdentifiersValueAsString": ["1", "2"]},
        ]
    )
    got = {(r["FeatureGroupName"], r["RecordIdentifierValueAsString"]): as_dict(r["Record"])
           for r in resp["Records"]}
    assert got == {
        (a["FeatureGroupArn"], "1"): {"n": "1"},
        (a["FeatureGroupArn"], "2"): {"n": "2"},
        (b["FeatureGroupName"], "1"): {"id": "1", "ts": T0, "n": "10"},
    }
    assert sorted((e["RecordIdentifierValueAsString"], e["ErrorCode"]) for e in resp["Errors"]) == [
        ("1", "ResourceNotFound"), ("2", "ResourceNotFound")]
    assert resp["UnprocessedIdentifiers"] == []


def test_soft_delete(rt: Any, make_group: Any) -> None:
    name = make_group()["FeatureGroupName"]
    rt.put_record(FeatureGroupName=name, Record=record(id="d", ts=T1, n=1))
    # An older delete leaves the online record in place.
    rt.delete_record(FeatureGroupName=name, RecordIdentifierValueAsString="d", EventTime=T0)
    assert get(rt, name, "d") is not None
    rt.delete_record(FeatureGroupName=name, RecordIdentifierValueAsString="d", EventTime=T2)
    assert get(rt, name, "d") is None
    listed = rt.list_records(FeatureGroupName=name)["RecordIdentifiers"]
    assert "d" not in listed
    assert "d" in rt.list_records(FeatureGroupName=name, IncludeSoftDeletedRecords=True)["RecordIdentifiers"]
    # The tombstone keeps its EventTime: only a newer write brings the record back.
    rt.put_record(FeatureGroupName=name, Record=record(id="d", ts=T1, n=2))
    assert get(rt, name, "d") is None
    rt.put_record(FeatureGroupName=name, Record=record(id="d", ts="2024-05-01T13:00:00Z", n=3))
    assert get(rt, name, "d")["n"] == "3"  # type: ignore[index]


def test_hard_delete(rt: Any, make_group: Any) -> None:
    desc = make_group()
    name = desc["FeatureGroupArn"]
    rt.put_record(FeatureGroupName=name, Record=record(id="h", ts=T1, n=1))
    with pytest.raises(rt.exceptions.ValidationError) as info:
        rt.delete_record(FeatureGroupName=name, RecordIdentifierValueAsString="h", EventTime=T0,
                         DeletionMode="HardDelete")
    assert "EventTime" in str(info.value)
    assert get(rt, name, "h") is not None
    rt.delete_record(FeatureGroupName=name, RecordIdentifierValueAsString="h", EventTime=T2,
                     DeletionMode="HardDelete")
    assert get(rt, name, "h") is None
    assert "h" not in rt.list_records(FeatureGroupName=name, IncludeSoftDeletedRecords=True)["RecordIdentifiers"]
    # Nothing is left online, so even an older write is accepted again.
    rt.put_record(FeatureGroupName=name, Record=record(id="h", ts=T0, n=9))
    assert get(rt, name, "h")["n"] == "9"  # type: ignore[index]


def test_delete_validation(rt: Any, make_group: Any) -> None:
    name = make_group()["FeatureGroupName"]
    with pytest.raises(rt.exceptions.ValidationError):
        rt.delete_record(FeatureGroupName=name, RecordIdentifierValueAsString="x", EventTime="yesterday")
    with pytest.raises(rt.exceptions.ResourceNotFound):
        rt.delete_record(FeatureGroupName="no-such-group", RecordIdentifierValueAsString="x", EventTime=T0)


def test_list_records_paging(rt: Any, make_group: Any) -> None:
    name = make_group()["FeatureGroupName"]
    ids = {f"rec-{i:02d}" for i in range(23)}
    for rid in ids:
        rt.put_record(FeatureGroupName=name, Record=record(id=rid, ts=T0))
    pages = list(rt.get_paginator("list_records").paginate(
        FeatureGroupName=name, PaginationConfig={"PageSize": 5}))
    assert [len(p["RecordIdentifiers"]) for p in pages] == [5, 5, 5, 5, 3]
    seen = [rid for p in pages for rid in p["RecordIdentifiers"]]
    assert len(seen) == len(set(seen)) and set(seen) == ids
    assert "NextToken" not in pages[-1]


def test_update_record(rt: Any, make_group: Any) -> None:
    name = make_group(online={"EnableOnlineStore": True, "StorageType": "Standard_V2"})["FeatureGroupName"]
    rt.put_record(FeatureGroupName=name, Record=record(id="u", ts=T1, n=1, s="keep"))
    rt.update_record(FeatureGroupName=name, RecordIdentifierValueAsString="u",
                     Features=record(ts=T2, n=2))
    assert get(rt, name, "u") == {"id": "u", "ts": T2, "n": "2", "s": "keep"}
    # Without the event time feature the record keeps its EventTime.
    rt.update_record(FeatureGroupName=name, RecordIdentifierValueAsString="u", Features=record(x=0.5))
    assert get(rt, name, "u") == {"id": "u", "ts": T2, "n": "2", "s": "keep", "x": "0.5"}
    with pytest.raises(rt.exceptions.ConflictException) as info:
        rt.update_record(FeatureGroupName=name, RecordIdentifierValueAsString="u", Features=record(ts=T0, n=3))
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    with pytest.raises(rt.exceptions.ResourceNotFound):
        rt.update_record(FeatureGroupName=name, RecordIdentifierValueAsString="nobody",
                         Features=record(ts=T2, n=3))
    with pytest.raises(rt.exceptions.ValidationError):
        rt.update_record(FeatureGroupName=name, RecordIdentifierValueAsString="u", Features=record(n="x"))
    with pytest.raises(rt.exceptions.ValidationError):
        rt.update_record(FeatureGroupName=name, RecordIdentifierValueAsString="u", Features=record(n=4),
                         TtlDuration={"Unit": "Days", "Value": 1})


def test_update_record_needs_standard_v2_or_in_memory(rt: Any, make_group: Any) -> None:
    name = make_group()["FeatureGroupName"]
    rt.put_record(FeatureGroupName=name, Record=record(id="u", ts=T1, n=1))
    with pytest.raises(rt.exceptions.ValidationError) as info:
        rt.update_record(FeatureGroupName=name, RecordIdentifierValueAsString="u", Features=record(ts=T2, n=2))
    assert "Standard_V2" in str(info.value)
