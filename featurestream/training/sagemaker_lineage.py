"""A training-set build in SageMaker ML Lineage Tracking, and its manifest's link to it.

Inputs: the labels' source (the RDS table or query, by its OpenLineage name: scheme, host, port,
database and table, never a user or password; or the labels' Parquet path) and each feature group
(by its ARN and definition fingerprint when the config names the SageMaker group in
`feature_groups[].feature_group`, else the Parquet path read). Output: the training set, by its
output URI and config hash, with the manifest's URI as a property. One action per training set
and config hash joins them (ContributedTo, Produced). The manifest gains `sagemaker_lineage`: the
artifact ARNs, the action ARN, or the error when recording failed.
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession

from featurestream.config.training_set import FeatureGroupInput, TrainingSetSpec
from featurestream.io import hadoop_fs
from featurestream.ops import sagemaker_lineage as sm
from featurestream.training.lineage import labels_dataset
from featurestream.training.manifest import config_hash, to_json


def uri_of(path: str) -> str:
    """A location as a URI: s3a:// read as s3://, a local path as file:///absolute/path."""
    from featurestream.ops.lineage import path_dataset

    dataset = path_dataset(path)
    if dataset.namespace == "file":
        return "file://" + dataset.name
    return f"{dataset.namespace}/{dataset.name}"


def feature_group_artifact(client: Any, group: FeatureGroupInput) -> sm.Artifact:
    """The group's artifact: its ARN and fingerprint from SageMaker, else the Parquet path read."""
    if group.feature_group is None:
        return sm.Artifact(uri=uri_of(group.path), type=sm.OFFLINE_DATA, properties={"name": group.name})
    from featurestream.connectors.provisioning import stored_fingerprint

    description = client.describe_feature_group(FeatureGroupName=group.feature_group)
    fingerprint = stored_fingerprint(client, description)
    return sm.Artifact(uri=str(description["FeatureGroupArn"]), type=sm.FEATURE_GROUP,
                       name=_entity_name(str(description["FeatureGroupName"])), source_id=fingerprint,
                       properties={"feature_group_name": str(description["FeatureGroupName"]),
                                   "definition_fingerprint": fingerprint or "(none recorded)"})


def graph(client: Any, spec: TrainingSetSpec, output_path: str,
          manifest_path: str) -> tuple[sm.Action, dict[str, sm.Artifact], dict[str, sm.Artifact]]:
    labels = labels_dataset(spec.labels)
    labels_uri = f"{labels.namespace}/{labels.name}" if labels.namespace != "file" else "file://" + labels.name
    inputs = {"labels": sm.Artifact(uri=labels_uri, type=sm.DATA_SOURCE if spec.labels.jdbc else sm.OFFLINE_DATA,
                                    properties={"timestamp_column": spec.labels.timestamp_column})}
    for group in spec.feature_groups:
        inputs[f"feature_group:{group.name}"] = feature_group_artifact(client, group)
    digest = config_hash(spec)
    outputs = {"training_set": sm.Artifact(uri=uri_of(output_path), type=sm.TRAINING_SET,
                                           name=_entity_name(f"training-set-{spec.name}"), source_id=digest,
                                           properties={"manifest": uri_of(manifest_path), "config_hash": digest,
                                                       "training_set": spec.name})}
    action = sm.Action(job="training-set", subject=spec.name, identity=digest,
                       uri=f"featurestream://training-set/{spec.name}", properties={"config_hash": digest})
    return action, inputs, outputs


def record(spark: SparkSession, lineage: sm.SageMakerLineage, spec: TrainingSetSpec, output_path: str,
           manifest_path: str, manifest: dict[str, Any]) -> sm.Recorded:
    """Record the build, then rewrite the manifest with what was recorded (or the failure)."""
    try:
        action, inputs, outputs = graph(lineage.client, spec, output_path, manifest_path)
    except Exception as exc:  # DescribeFeatureGroup refused: the same policy as the lineage calls
        recorded = sm.Recorded(error=lineage.failure(f"training-set {spec.name}", exc))
    else:
        recorded = lineage.record(action, inputs, outputs)
    manifest["sagemaker_lineage"] = {**recorded.describe(),
                                     "training_set_artifact_arn": recorded.artifacts.get("training_set") or None}
    hadoop_fs.write_text(spark, manifest_path, to_json(manifest))
    return recorded


def _entity_name(text: str) -> str:
    """An ExperimentEntityName: letters and digits joined by hyphens, at most 120 characters."""
    parts = "".join(c if c.isalnum() else "-" for c in text).split("-")
    return "-".join(p for p in parts if p)[:120].strip("-") or "featurestream"
