"""SageMaker ML Lineage Tracking on the emulator, through boto3: shapes, filters, paging, errors."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

pytestmark = pytest.mark.feature_store


def _code(error: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    response = error.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def test_entities_associations_and_lists(sm: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    uri = f"s3://bucket/{tag}/features"
    first = sm.create_artifact(ArtifactName=f"fg-{tag}", ArtifactType="FeatureGroup",
                               Source={"SourceUri": uri, "SourceTypes": [{"SourceIdType": "Custom", "Value": "fp1"}]},
                               Properties={"fingerprint": "fp1"})["ArtifactArn"]
    assert first.startswith("arn:aws:sagemaker:") and ":artifact/" in first
    # Artifacts are not unique by source: a second one with the same SourceUri is a new entity.
    second = sm.create_artifact(ArtifactType="DataSet", Source={"SourceUri": uri})["ArtifactArn"]
    assert second != first
    source = {"SourceUri": f"featurestream://training-set/{tag}", "SourceType": "featurestream"}
    action = sm.create_action(ActionName=f"Run-{tag}", ActionType="TrainingSetBuild", Status="Completed",
                              Source=source, Properties={"rows": "10"})["ActionArn"]
    assert action.endswith(f":action/run-{tag}")  # names are lower-cased in the ARN
    context = sm.create_context(ContextName=f"ctx_{tag}", ContextType="Pipeline",
                                Source={"SourceUri": f"featurestream://{tag}"})["ContextArn"]

    described = sm.describe_artifact(ArtifactArn=first)
    assert described["ArtifactName"] == f"fg-{tag}" and described["Properties"] == {"fingerprint": "fp1"}
    assert described["Source"]["SourceTypes"] == [{"SourceIdType": "Custom", "Value": "fp1"}]
    assert described["CreationTime"].year >= 2024
    by_name = sm.describe_action(ActionName=f"Run-{tag}")
    assert by_name["ActionArn"] == action and by_name["Status"] == "Completed"
    assert sm.describe_action(ActionName=action)["ActionName"] == f"Run-{tag}"
    assert sm.describe_context(ContextName=f"ctx_{tag}")["ContextType"] == "Pipeline"

    added = sm.add_association(SourceArn=first, DestinationArn=action, AssociationType="ContributedTo")
    assert (added["SourceArn"], added["DestinationArn"]) == (first, action)
    sm.add_association(SourceArn=action, DestinationArn=second, AssociationType="Produced")
    sm.add_association(SourceArn=action, DestinationArn=context)  # no type: AssociatedWith is not implied

    found = sm.list_artifacts(SourceUri=uri)["ArtifactSummaries"]
    assert {a["ArtifactArn"] for a in found} == {first, second}
    typed = sm.list_artifacts(SourceUri=uri, ArtifactType="FeatureGroup")["ArtifactSummaries"]
    assert [a["ArtifactArn"] for a in typed] == [first] and typed[0]["Source"]["SourceUri"] == uri
    assert [a["ActionArn"] for a in sm.list_actions(SourceUri=f"featurestream://training-set/{tag}")[
        "ActionSummaries"]] == [action]
    assert sm.list_actions(ActionType="TrainingSetBuild", SortBy="Name", SortOrder="Ascending")["ActionSummaries"]

    into = sm.list_associations(DestinationArn=action)["AssociationSummaries"]
    assert len(into) == 1
    edge = into[0]
    assert (edge["SourceArn"], edge["AssociationType"], edge["SourceType"], edge["DestinationType"],
            edge["SourceName"], edge["DestinationName"]) == (first, "ContributedTo", "FeatureGroup",
                                                             "TrainingSetBuild", f"fg-{tag}", f"Run-{tag}")
    out = sm.list_associations(SourceArn=action, AssociationType="Produced")["AssociationSummaries"]
    assert [e["DestinationArn"] for e in out] == [second]
    assert "AssociationType" not in sm.list_associations(DestinationArn=context)["AssociationSummaries"][0]

    # Paging: MaxResults 1 walks every association of the action with NextToken.
    seen, token = [], None
    while True:
        page = sm.list_associations(SourceArn=action, MaxResults=1, **({"NextToken": token} if token else {}))
        seen += page["AssociationSummaries"]
        token = page.get("NextToken")
        if not token:
            break
    assert len(seen) == 2


def test_errors_are_the_models(sm: Any, sm_raw: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    action = sm.create_action(ActionName=f"a-{tag}", ActionType="T", Source={"SourceUri": "u"})["ActionArn"]
    with pytest.raises(ClientError) as taken:
        sm.create_action(ActionName=f"A-{tag}", ActionType="T", Source={"SourceUri": "u"})
    assert _code(taken) == ("ValidationException", 400) and "already exists" in str(taken.value)
    missing = action.replace(f"action/a-{tag}", "artifact/" + "0" * 32)
    with pytest.raises(sm.exceptions.ResourceNotFound) as not_found:
        sm.add_association(SourceArn=missing, DestinationArn=action)
    assert _code(not_found) == ("ResourceNotFound", 400)
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_artifact(ArtifactArn=missing)
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_action(ActionName=f"nope-{tag}")
    artifact = sm.create_artifact(ArtifactType="DataSet", Source={"SourceUri": "s3://b/k"})["ArtifactArn"]
    sm.add_association(SourceArn=artifact, DestinationArn=action)
    with pytest.raises(ClientError) as twice:
        sm.add_association(SourceArn=artifact, DestinationArn=action)
    assert _code(twice) == ("ValidationException", 400) and "already exists" in str(twice.value)
    with pytest.raises(ParamValidationError):  # boto3 checks the model's required members itself
        sm.create_artifact(ArtifactType="DataSet")
    for bad in ({"ArtifactType": "DataSet"}, {"ArtifactType": "DataSet", "Source": {"SourceUri": ""}},
                {"ArtifactType": "x" * 257, "Source": {"SourceUri": "u"}},
                {"ArtifactType": "D", "Source": {"SourceUri": "u"}, "Properties": {str(i): "v" for i in range(31)}}):
        with pytest.raises(ClientError) as invalid:
            sm_raw.create_artifact(**bad)
        assert _code(invalid) == ("ValidationException", 400), bad
    for bad_list in ({"SortBy": "Name"}, {"MaxResults": 0}, {"NextToken": "%%%"}):
        with pytest.raises(ClientError) as invalid:
            sm_raw.list_artifacts(**bad_list)
        assert _code(invalid) == ("ValidationException", 400), bad_list

