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


def _group(client: Any, group: FeatureGroupInput) -> sm.Artifact:
    if group.feature_group is None:
        return sm.path_artifact(group.source, name=group.name)
    return sm.feature_group_artifact(client, group.feature_group)


def _inputs(client: Any, spec: TrainingSetSpec) -> dict[str, sm.Artifact]:
    labels = labels_dataset(spec.labels)
    found = {"labels": sm.path_artifact(str(spec.labels.path)) if spec.labels.jdbc is None else
             sm.dataset_artifact(labels.namespace, labels.name, sm.DATA_SOURCE)}
    for group in spec.feature_groups:
        found[f"feature_group:{group.name}"] = _group(client, group)
    return found


def record(spark: SparkSession, lineage: sm.SageMakerLineage, spec: TrainingSetSpec, output_path: str,
           manifest_path: str, manifest: dict[str, Any]) -> sm.Recorded:
    """Record the build, then rewrite the manifest with what was recorded (or the failure)."""
    digest = config_hash(spec)
    output = sm.path_artifact(output_path, sm.TRAINING_SET, manifest=sm.path_artifact(manifest_path).uri,
                              config_hash=digest, training_set=spec.name)
    output = sm.Artifact(output.uri, output.type, sm.entity_name(f"training-set-{spec.name}"), digest,
                         output.properties)
    action = sm.Action(job="training-set", subject=spec.name, identity=digest,
                       uri=f"featurestream://training-set/{spec.name}", properties={"config_hash": digest})
    recorded = sm.record_run(lineage, action, lambda: _inputs(lineage.client, spec), lambda: {"training_set": output})
    assert recorded is not None
    manifest["sagemaker_lineage"] = {**recorded.describe(),
                                     "training_set_artifact_arn": recorded.artifacts.get("training_set")}
    hadoop_fs.write_text(spark, manifest_path, to_json(manifest))
    return recorded
