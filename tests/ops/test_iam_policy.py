"""docs/iam-policy.json: complete policy documents, least privilege (no wildcard actions or
resources), and every runtime call of the jobs covered."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
POLICIES = json.loads((ROOT / "docs" / "iam-policy.json").read_text())["policies"]


def actions(policy: dict[str, object]) -> set[str]:
    return {a for s in policy["Statement"] for a in s["Action"]}  # type: ignore[index, union-attr]


def test_documents_are_complete_and_narrow() -> None:
    assert set(POLICIES) == {"stream-job", "compaction-job", "training-set-job", "provisioning"}
    for name, policy in POLICIES.items():
        assert policy["Version"] == "2012-10-17", name
        sids = [s["Sid"] for s in policy["Statement"]]
        assert len(sids) == len(set(sids)), name
        for statement in policy["Statement"]:
            assert statement["Effect"] == "Allow"
            assert all("*" not in action for action in statement["Action"]), (name, statement["Sid"])
            if statement["Sid"] == "FindLineage":
                # SageMaker's List* lineage calls have no resource-level permissions: read-only, "*".
                assert statement["Action"] == ["sagemaker:ListArtifacts", "sagemaker:ListAssociations"]
                continue
            assert statement["Resource"] and all(r != "*" and r.startswith("arn:aws:") for r in statement["Resource"])


def test_jobs_can_do_what_they_do_and_no_more() -> None:
    stream = actions(POLICIES["stream-job"])
    assert {"sagemaker:PutRecord", "sagemaker:BatchWriteRecord", "s3:PutObject", "kafka-cluster:ReadData"} <= stream
    # Only provisioning creates or changes feature groups, or passes a role; the jobs create lineage
    # entities only (artifacts, actions named featurestream-*, associations).
    lineage = {"sagemaker:CreateArtifact", "sagemaker:CreateAction", "sagemaker:AddAssociation",
               "sagemaker:DescribeArtifact", "sagemaker:DescribeAction", "sagemaker:ListArtifacts",
               "sagemaker:ListAssociations"}
    for job in ("stream-job", "compaction-job", "training-set-job"):
        assert lineage <= actions(POLICIES[job]), job
        assert not {a for a in actions(POLICIES[job]) - lineage
                    if a.startswith(("sagemaker:Create", "sagemaker:Update", "sagemaker:Delete", "iam:"))}
    assert "iam:PassRole" in actions(POLICIES["provisioning"])
    # Reading jobs never write where they read.
    compaction = [s for s in POLICIES["compaction-job"]["Statement"] if s["Sid"] == "ReadOfflineStore"]
    assert compaction[0]["Action"] == ["s3:GetObject"]


def test_lineage_calls_are_allowed_to_every_job() -> None:
    """Every SageMaker call the lineage recorder makes (read from its source) is in each job's policy."""
    import re

    source = (ROOT / "featurestream" / "ops" / "sagemaker_lineage.py").read_text()
    calls = set(re.findall(r"self\.client\.([a-z_]+)\(", source)) | {"list_artifacts"}  # via _pages
    needed = {"sagemaker:" + "".join(part.title() for part in call.split("_")) for call in calls}
    assert needed == {"sagemaker:ListArtifacts", "sagemaker:CreateArtifact", "sagemaker:DescribeAction",
                      "sagemaker:CreateAction", "sagemaker:ListAssociations", "sagemaker:AddAssociation"}
    for job in ("stream-job", "compaction-job", "training-set-job"):
        assert needed <= actions(POLICIES[job]), job
