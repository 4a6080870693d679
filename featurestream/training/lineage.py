"""The OpenLineage datasets of a training-set run: the labels (a JDBC table or Parquet), the feature
groups' Parquet, and the set (or the history export) written. Names follow OpenLineage's naming
spec: `postgres://host:port` + `database.schema.table`, `mysql://host:port` + `database.table`,
paths as in `featurestream.ops.lineage.path_dataset`. The URL's parameters (user, options) are left
out and the URL is masked first (featurestream.config.credentials), so no credential can reach an event.
"""

from __future__ import annotations

from featurestream.config.training_set import LabelsSpec, TrainingSetSpec
from featurestream.ops.lineage import DatasetRef, jdbc_table, path_dataset


def labels_dataset(spec: LabelsSpec) -> DatasetRef:
    if spec.path is not None or spec.jdbc is None:
        return path_dataset(str(spec.path))
    # A query has no table name: it is named by its text, so the same query is the same dataset.
    return jdbc_table(spec.jdbc.url, spec.table, spec.query)


def datasets(spec: TrainingSetSpec, *, export: bool) -> tuple[list[DatasetRef], list[DatasetRef]]:
    """(inputs, outputs) of a build, or of a history export with `export`."""
    labels = labels_dataset(spec.labels)
    if export:
        assert spec.export_history is not None
        return [labels], [path_dataset(spec.export_history.path)]
    inputs = [labels, *[path_dataset(group.source) for group in spec.feature_groups]]
    outputs = [path_dataset(spec.output.path)] if spec.output is not None else []
    return inputs, outputs
