"""The OpenLineage datasets of a training-set run: the labels (a JDBC table or Parquet), the feature
groups' Parquet, and the set (or the history export) written. Names follow OpenLineage's naming
spec: `postgres://host:port` + `database.schema.table`, `mysql://host:port` + `database.table`,
paths as in `featurestream.ops.lineage.path_dataset`. The URL's parameters (user, options) are left
out and the URL is masked first (featurestream.config.credentials), so no credential can reach an event.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

from featurestream.config.credentials import redact
from featurestream.config.training_set import LabelsSpec, TrainingSetSpec
from featurestream.ops.lineage import DatasetRef, path_dataset

_SCHEMES = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}


def labels_dataset(spec: LabelsSpec) -> DatasetRef:
    if spec.path is not None or spec.jdbc is None:
        return path_dataset(str(spec.path))
    url = urlsplit(redact(spec.jdbc.url).removeprefix("jdbc:"))
    scheme = _SCHEMES.get(url.scheme, url.scheme)
    host = url.hostname or "localhost"
    namespace = f"{scheme}://{host}:{url.port}" if url.port else f"{scheme}://{host}"
    database = url.path.strip("/") or "default"
    if spec.table is not None:
        table = spec.table
        if scheme == "postgres" and "." not in table:
            table = f"public.{table}"
        return DatasetRef(namespace, f"{database}.{table}")
    # A query has no table name: name it by its text, so the same query is the same dataset.
    digest = hashlib.sha256(str(spec.query).encode("utf-8")).hexdigest()[:12]
    return DatasetRef(namespace, f"{database}.query_{digest}")


def datasets(spec: TrainingSetSpec, *, export: bool) -> tuple[list[DatasetRef], list[DatasetRef]]:
    """(inputs, outputs) of a build, or of a history export with `export`."""
    labels = labels_dataset(spec.labels)
    if export:
        assert spec.export_history is not None
        return [labels], [path_dataset(spec.export_history.path)]
    inputs = [labels, *[path_dataset(group.path) for group in spec.feature_groups]]
    outputs = [path_dataset(spec.output.path)] if spec.output is not None else []
    return inputs, outputs
