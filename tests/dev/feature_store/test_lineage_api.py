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



def test_query_lineage_walks_the_graph(sm: Any, sm_raw: Any) -> None:
    # raw ─ContributedTo→ group ─ContributedTo→ build ─Produced→ training set ─ContributedTo→ model
    #                          other ─ContributedTo→ build;   build ─(no type)→ pipeline context
    tag = uuid.uuid4().hex[:8]

    def artifact(kind: str, **extra: Any) -> str:
        return str(sm.create_artifact(ArtifactType=kind, Source={"SourceUri": f"s3://b/{tag}/{kind}"},
                                      **extra)["ArtifactArn"])

    raw, group = artifact("DataSet", Properties={"layer": "raw"}), artifact("FeatureGroup")
    other, training, model = artifact("FeatureGroup"), artifact("DataSet", Properties={"layer": "training"}), \
        artifact("Model")
    build = sm.create_action(ActionName=f"build-{tag}", ActionType="TrainingSetBuild",
                             Source={"SourceUri": f"fs://{tag}"})["ActionArn"]
    pipeline = sm.create_context(ContextName=f"pipe-{tag}", ContextType="Pipeline",
                                 Source={"SourceUri": f"fs://{tag}/p"})["ContextArn"]
    for source, destination, kind in ((raw, group, "ContributedTo"), (group, build, "ContributedTo"),
                                      (other, build, "ContributedTo"), (build, training, "Produced"),
                                      (training, model, "ContributedTo"), (build, pipeline, None)):
        sm.add_association(SourceArn=source, DestinationArn=destination, **({"AssociationType": kind} if kind else {}))

    def arns(**query: Any) -> list[str]:
        return [v["Arn"] for v in sm.query_lineage(StartArns=[training], **query)["Vertices"]]

    # Up from the training set: build (1), group and other (2), raw (3); nearest first, then by ARN.
    assert arns(Direction="Ascendants") == [build, *sorted([group, other]), raw]
    assert arns(Direction="Ascendants", MaxDepth=2) == [build, *sorted([group, other])]
    assert arns(Direction="Descendants") == [model]
    # Both: its ascendants and descendants, not the build's other child (a zig-zag), nor the start.
    both = arns(Direction="Both")
    assert sorted(both) == sorted([build, group, other, raw, model]) and pipeline not in both
    # Filters choose what is returned, not where the walk goes (raw is behind the groups).
    assert arns(Direction="Ascendants", Filters={"Types": ["DataSet"]}) == [raw]
    assert arns(Direction="Ascendants", Filters={"LineageTypes": ["Action"]}) == [build]
    assert arns(Direction="Ascendants", Filters={"Properties": {"layer": "raw"}}) == [raw]

    answer = sm.query_lineage(StartArns=[training], Direction="Ascendants", IncludeEdges=True, MaxDepth=1)
    assert answer["Vertices"] == [{"Arn": build, "Type": "TrainingSetBuild", "LineageType": "Action"}]
    assert answer["Edges"] == [{"SourceArn": build, "DestinationArn": training, "AssociationType": "Produced"}]
    from_build = sm.query_lineage(StartArns=[build], Direction="Descendants", IncludeEdges=True)
    assert {v["Arn"]: v["LineageType"] for v in from_build["Vertices"]} == {
        training: "Artifact", pipeline: "Context", model: "Artifact"}
    assert {"SourceArn": build, "DestinationArn": pipeline} in from_build["Edges"]  # no type, none invented

    # Paging over the vertices: one at a time gives the same list.
    pages, token = [], None
    while True:
        page = sm.query_lineage(StartArns=[training], Direction="Ascendants", MaxResults=1,
                                **({"NextToken": token} if token else {}))
        pages += [v["Arn"] for v in page["Vertices"]]
        token = page.get("NextToken")
        if not token:
            break
    assert pages == arns(Direction="Ascendants")

    missing = training.replace(training.rsplit("/", 1)[1], "0" * 32)
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.query_lineage(StartArns=[missing])
    for bad in ({"StartArns": [training], "MaxDepth": 11}, {"StartArns": [training], "MaxResults": 51},
                {"StartArns": [training, model]}):
        with pytest.raises((ClientError, ParamValidationError)) as invalid:
            sm_raw.query_lineage(**bad)
        if isinstance(invalid.value, ClientError):
            assert _code(invalid) == ("ValidationException", 400), bad
