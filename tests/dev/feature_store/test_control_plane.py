"""Control plane: CreateFeatureGroup, Describe, List (paging), Delete, Update, DescribeFeatureMetadata."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.dev.feature_store.helpers import DEFAULT_FEATURES, record, region, unique_name

pytestmark = pytest.mark.feature_store

ACCOUNT = "123456789012"


def _create_kwargs(name: str, **overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "FeatureGroupName": name,
        "RecordIdentifierFeatureName": "id",
        "EventTimeFeatureName": "ts",
        "FeatureDefinitions": DEFAULT_FEATURES,
        "OnlineStoreConfig": {"EnableOnlineStore": True},
    }
    kwargs.update(overrides)
    return {k: v for k, v in kwargs.items() if v is not None}


def test_create_returns_arn_and_describe_matches_aws_shape(sm: Any) -> None:
    name = unique_name("Shape")
    resp = sm.create_feature_group(
        **_create_kwargs(
            name,
            OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://my-bucket/prefix/"}},
            OnlineStoreConfig={"EnableOnlineStore": True, "TtlDuration": {"Unit": "Days", "Value": 3}},
            Description="conformance",
        )
    )
    arn = f"arn:aws:sagemaker:{region()}:{ACCOUNT}:feature-group/{name.lower()}"
    assert resp["FeatureGroupArn"] == arn

    desc = sm.describe_feature_group(FeatureGroupName=name)
    assert desc["FeatureGroupArn"] == arn
    assert desc["FeatureGroupName"] == name
    assert desc["RecordIdentifierFeatureName"] == "id"
    assert desc["EventTimeFeatureName"] == "ts"
    assert desc["FeatureDefinitions"] == DEFAULT_FEATURES
    assert desc["FeatureGroupStatus"] == "Created"
    assert desc["OfflineStoreStatus"] == {"Status": "Active"}
    assert desc["Description"] == "conformance"
    assert isinstance(desc["CreationTime"], datetime)
    assert abs(desc["CreationTime"].timestamp() - datetime.now(UTC).timestamp()) < 60
    assert desc["OnlineStoreConfig"] == {
        "EnableOnlineStore": True,
        "TtlDuration": {"Unit": "Days", "Value": 3},
        "StorageType": "Standard",
    }
    epoch = int(desc["CreationTime"].timestamp())
    s3 = desc["OfflineStoreConfig"]["S3StorageConfig"]
    assert s3["S3Uri"] == "s3://my-bucket/prefix/"
    assert s3["ResolvedOutputS3Uri"] == (
        f"s3://my-bucket/prefix/{ACCOUNT}/sagemaker/{region()}/offline-store/{name}-{epoch}/data"
    )
    assert desc["OfflineStoreConfig"]["TableFormat"] == "Glue"
    assert desc["OfflineStoreConfig"]["DataCatalogConfig"] == {
        "TableName": f"{name.lower().replace('-', '_')}_{epoch}",
        "Catalog": "AwsDataCatalog",
        "Database": "sagemaker_featurestore",
    }
    assert desc["ThroughputConfig"] == {"ThroughputMode": "OnDemand"}


def test_describe_by_arn_equals_describe_by_name(sm: Any, make_group: Any) -> None:
    by_name = make_group()
    by_arn = sm.describe_feature_group(FeatureGroupName=by_name["FeatureGroupArn"])
    for desc in (by_name, by_arn):
        desc.pop("ResponseMetadata", None)
    assert by_arn == by_name


def test_create_twice_is_resource_in_use(sm: Any, make_group: Any) -> None:
    desc = make_group()
    with pytest.raises(sm.exceptions.ResourceInUse):
        sm.create_feature_group(**_create_kwargs(desc["FeatureGroupName"]))


def test_missing_group_is_resource_not_found(sm: Any) -> None:
    with pytest.raises(sm.exceptions.ResourceNotFound) as info:
        sm.describe_feature_group(FeatureGroupName="does-not-exist")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    other_region = f"arn:aws:sagemaker:xx-nowhere-1:{ACCOUNT}:feature-group/does-not-exist"
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_feature_group(FeatureGroupName=other_region)


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"FeatureGroupName": "bad name!"}, "FeatureGroupName"),
        ({"FeatureGroupName": "-leading-dash"}, "FeatureGroupName"),
        ({"FeatureGroupName": "a" * 65}, "FeatureGroupName"),
        ({"RecordIdentifierFeatureName": "missing"}, "RecordIdentifierFeatureName"),
        ({"EventTimeFeatureName": "missing"}, "EventTimeFeatureName"),
        ({"EventTimeFeatureName": "n"}, "String or Fractional"),
        ({"FeatureDefinitions": [*DEFAULT_FEATURES, {"FeatureName": "is_deleted", "FeatureType": "String"}]},
         "is_deleted"),
        ({"FeatureDefinitions": [*DEFAULT_FEATURES, {"FeatureName": "write_time", "FeatureType": "String"}]},
         "write_time"),
        ({"FeatureDefinitions": [*DEFAULT_FEATURES, {"FeatureName": "api_invocation_time", "FeatureType": "String"}]},
         "api_invocation_time"),
        ({"FeatureDefinitions": [*DEFAULT_FEATURES, {"FeatureName": "b", "FeatureType": "Boolean"}]},
         "FeatureType"),
        ({"FeatureDefinitions": [*DEFAULT_FEATURES, {"FeatureName": "N", "FeatureType": "String"}]},
         "more than once"),
        ({"OnlineStoreConfig": None}, "OfflineStoreConfig"),
        ({"OnlineStoreConfig": {"EnableOnlineStore": False}}, "OfflineStoreConfig"),
        ({"OfflineStoreConfig": {"S3StorageConfig": {"S3Uri": "not-a-uri"}}}, "S3Uri"),
        # Issue 19, finding 3: a bucket outside S3's rules or a key leading elsewhere.
        ({"OfflineStoreConfig": {"S3StorageConfig": {"S3Uri": "s3://../../../x"}}}, "not a valid S3 bucket name"),
        ({"OfflineStoreConfig": {"S3StorageConfig": {"S3Uri": "s3://bucket//abs/path"}}}, "empty segment"),
        # This emulator has no catalog (--catalog-profile): test_iceberg_offline has one.
        ({"OfflineStoreConfig": {"S3StorageConfig": {"S3Uri": "s3://bkt/p"}, "TableFormat": "Iceberg"}},
         "needs an Iceberg catalog"),
        ({"OfflineStoreConfig": {"S3StorageConfig": {"S3Uri": "s3://bkt/p"}, "TableFormat": "Delta"}},
         "must be Glue or Iceberg"),
        ({"OnlineStoreConfig": {"EnableOnlineStore": True, "TtlDuration": {"Unit": "Days", "Value": 0}}},
         "TtlDuration"),
    ],
)
def test_create_validation_errors(sm_raw: Any, overrides: dict[str, Any], needle: str) -> None:
    kwargs = _create_kwargs(unique_name(), **overrides)
    if "FeatureGroupName" in overrides:
        kwargs["FeatureGroupName"] = overrides["FeatureGroupName"]
    with pytest.raises(sm_raw.exceptions.ClientError) as info:
        sm_raw.create_feature_group(**kwargs)
    error = info.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert needle in error["Message"]
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_list_feature_groups_paging_and_filters(sm: Any, make_group: Any) -> None:
    prefix = unique_name("Paging")
    names = [make_group(name=f"{prefix}-{i}")["FeatureGroupName"] for i in range(5)]

    pages = sm.get_paginator("list_feature_groups").paginate(
        NameContains=prefix, SortBy="Name", SortOrder="Ascending", PaginationConfig={"PageSize": 2}
    )
    seen = [s["FeatureGroupName"] for page in pages for s in page["FeatureGroupSummaries"]]
    assert seen == sorted(names)

    first = sm.list_feature_groups(NameContains=prefix, MaxResults=2, SortBy="Name", SortOrder="Descending")
    assert [s["FeatureGroupName"] for s in first["FeatureGroupSummaries"]] == sorted(names)[::-1][:2]
    assert first["NextToken"]
    summary = first["FeatureGroupSummaries"][0]
    assert summary["FeatureGroupArn"].endswith(summary["FeatureGroupName"].lower())
    assert summary["FeatureGroupStatus"] == "Created"
    assert summary["OfflineStoreStatus"] == {"Status": "Active"}

    # Default order: newest first.
    newest = sm.list_feature_groups(NameContains=prefix, MaxResults=5)["FeatureGroupSummaries"]
    times = [s["CreationTime"] for s in newest]
    assert times == sorted(times, reverse=True)

    after = sm.list_feature_groups(NameContains=prefix, CreationTimeAfter=datetime(2999, 1, 1, tzinfo=UTC))
    assert after["FeatureGroupSummaries"] == []


def test_delete_feature_group(sm: Any, rt: Any, make_group: Any) -> None:
    desc = make_group()
    name = desc["FeatureGroupName"]
    rt.put_record(FeatureGroupName=name, Record=record(id="a", ts="2024-01-01T00:00:00Z"))
    sm.delete_feature_group(FeatureGroupName=name)
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_feature_group(FeatureGroupName=name)
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.delete_feature_group(FeatureGroupName=name)
    with pytest.raises(rt.exceptions.ResourceNotFound):
        rt.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="a")
    # The name is free again, and the new group starts empty.
    make_group(name=name)
    assert "Record" not in rt.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="a")


def test_update_feature_group_adds_features_and_ttl(sm: Any, rt: Any, make_group: Any) -> None:
    desc = make_group()
    name = desc["FeatureGroupName"]
    with pytest.raises(rt.exceptions.ValidationError):
        rt.put_record(FeatureGroupName=name, Record=record(id="a", ts="2024-01-01T00:00:00Z", extra=1))

    resp = sm.update_feature_group(
        FeatureGroupName=desc["FeatureGroupArn"],
        FeatureAdditions=[{"FeatureName": "extra", "FeatureType": "Integral"}],
        OnlineStoreConfig={"TtlDuration": {"Unit": "Hours", "Value": 2}},
    )
    assert resp["FeatureGroupArn"] == desc["FeatureGroupArn"]
    after = sm.describe_feature_group(FeatureGroupName=name)
    assert after["FeatureDefinitions"] == [*DEFAULT_FEATURES, {"FeatureName": "extra", "FeatureType": "Integral"}]
    assert after["OnlineStoreConfig"]["TtlDuration"] == {"Unit": "Hours", "Value": 2}
    assert after["LastUpdateStatus"] == {"Status": "Successful"}
    assert after["LastModifiedTime"] >= after["CreationTime"]

    rt.put_record(FeatureGroupName=name, Record=record(id="a", ts="2999-01-01T00:00:00Z", extra=7))
    got = rt.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="a", FeatureNames=["extra"])
    assert got["Record"] == [{"FeatureName": "extra", "ValueAsString": "7"}]

    for bad in ([{"FeatureName": "extra", "FeatureType": "String"}],
                [{"FeatureName": "write_time", "FeatureType": "String"}]):
        with pytest.raises(sm.exceptions.ClientError) as info:
            sm.update_feature_group(FeatureGroupName=name, FeatureAdditions=bad)
        assert info.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.update_feature_group(FeatureGroupName="nope-nope", FeatureAdditions=[
            {"FeatureName": "z", "FeatureType": "String"}])


def test_describe_feature_metadata(sm: Any, make_group: Any) -> None:
    desc = make_group()
    meta = sm.describe_feature_metadata(FeatureGroupName=desc["FeatureGroupArn"], FeatureName="x")
    assert meta["FeatureType"] == "Fractional"
    assert meta["FeatureGroupName"] == desc["FeatureGroupName"]


def test_control_plane_wire_format(emulator: Any) -> None:
    """JSON 1.1 content type and epoch-number timestamps: what the AWS Java SDK v2 insists on."""
    import json
    import urllib.request

    name = unique_name("Wire")
    body = json.dumps(_create_kwargs(name)).encode()
    for target, payload in (("CreateFeatureGroup", body),
                            ("DescribeFeatureGroup", json.dumps({"FeatureGroupName": name}).encode())):
        req = urllib.request.Request(
            emulator.url + "/", data=payload, method="POST",
            headers={"X-Amz-Target": f"SageMaker.{target}", "Content-Type": "application/x-amz-json-1.1"},
        )
        with urllib.request.urlopen(req) as resp:
            assert resp.headers["Content-Type"] == "application/x-amz-json-1.1"
            assert resp.headers["x-amzn-RequestId"]
            out = json.loads(resp.read())
    assert isinstance(out["CreationTime"], int | float)
    assert re.fullmatch(r"arn:aws:sagemaker:[a-z0-9-]+:\d{12}:feature-group/.+", out["FeatureGroupArn"])


def test_tags_are_kept_apart_from_describe(sm: Any) -> None:
    """Tags at create and from AddTags (a key given again takes its new value); ListTags returns
    them, DescribeFeatureGroup does not (as in SageMaker)."""
    name = unique_name("Tags")
    arn = sm.create_feature_group(**_create_kwargs(name, Tags=[{"Key": "a", "Value": "1"}]))["FeatureGroupArn"]
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "a", "Value": "2"}, {"Key": "b", "Value": "3"}])
    assert sm.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "a", "Value": "2"}, {"Key": "b", "Value": "3"}]
    assert "Tags" not in sm.describe_feature_group(FeatureGroupName=name)
