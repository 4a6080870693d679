"""Build a training set: read labels → load feature groups → as-of join → write → manifest.

Each step is its own module; this one wires them and times the phases. The session is passed in.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import SparkSession

from featurestream.config.training_set import TrainingSetSpec
from featurestream.errors import ConfigError
from featurestream.io import hadoop_fs, paths
from featurestream.training import output, storage
from featurestream.training.features import LoadedGroup, load_group
from featurestream.training.labels import read_labels
from featurestream.training.manifest import MANIFEST_FILE, build_manifest, to_json
from featurestream.training.pit import PitOptions, PitReport, as_of_join
from featurestream.training.progress import Progress

log = logging.getLogger(__name__)


@dataclass
class BuildResult:
    path: str
    manifest_path: str
    rows: dict[str, int]
    seconds: float
    manifest: dict[str, Any] = field(default_factory=dict)


def _check_output_names(source: str, label_columns: list[str], groups: list[LoadedGroup]) -> None:
    seen = {c: "labels" for c in label_columns}
    for index, group in enumerate(groups):
        side = group.side
        for name in [*side.features, *([side.event_time_output] if side.event_time_output else [])]:
            if name in seen:
                reason = f"output column {name!r} of {side.name} clashes with {seen[name]}; use prefix or rename"
                raise ConfigError(source, f"feature_groups[{index}]", reason)
            seen[name] = side.name


def build_training_set(spark: SparkSession, spec: TrainingSetSpec, *, source: str,
                       progress: Progress | None = None, lineage: dict[str, Any] | None = None,
                       scheduler: dict[str, str] | None = None, catalog: str | None = None) -> BuildResult:
    """`lineage`: the OpenLineage run this build belongs to (`LineageRun.reference()`), for the manifest;
    `scheduler`: the scheduler's run that started it (`featurestream.ops.parent_run.scheduler_run`);
    `catalog`: the Spark name of the profile's Iceberg catalog (groups given by `table`)."""
    out_spec = spec.require_output(source)
    progress = progress or Progress(spark, interactive=False)
    started = datetime.now(UTC)
    storage.prepare(spark, spec.labels.path, out_spec.path, *[g.path for g in spec.feature_groups])

    with progress.phase("reading labels"):
        labels = read_labels(spark, spec.labels, source=source)
    try:
        with progress.phase("planning feature reads"):
            label_types = {f.name: f.dataType for f in labels.frame.schema.fields}
            groups = [
                load_group(spark, group, i, source=source, label_types=label_types, time_range=labels.time_range,
                           availability=spec.join.availability, sample_fraction=spec.join.skew.sample_fraction,
                           catalog=catalog)
                for i, group in enumerate(spec.feature_groups)
            ]
            _check_output_names(source, labels.frame.columns, groups)
        report = PitReport()
        options = PitOptions(strictly_before=spec.join.strictly_before, availability=spec.join.availability,
                             skew=spec.join.skew, partitions=spec.join.partitions,
                             reduce_max_labels=spec.join.reduce_max_labels)
        with progress.phase("joining as of label time"):
            joined = as_of_join(labels.frame, labels.timestamp_column, [g.side for g in groups], options, report,
                                label_count=labels.rows)
            cut = output.validation_cut(labels.frame, labels.timestamp_column, out_spec)
            features = [c for g in groups for c in g.side.features]
            written = output.write(spark, joined, labels.timestamp_column, out_spec, cut, features, source=source)
        with progress.phase("describing the labels"):
            for part in written.splits:
                frame = output.read_back(spark, written, part, joined.schema)
                output.describe_labels(frame, part, spec.labels.label_columns)
    finally:
        labels.unpersist()

    finished = datetime.now(UTC)
    manifest = build_manifest(
        spec=spec, source=source, started=started, finished=finished,
        spark_info={"version": spark.version, "master": spark.sparkContext.master,
                    "shuffle_partitions": spark.conf.get("spark.sql.shuffle.partitions")},
        labels=labels.lineage,
        feature_groups=[g.lineage for g in groups],
        join={"strictly_before": options.strictly_before, "availability": options.availability,
              "algorithm": "union + sort per key, running max of the record struct", "passes": report.passes},
        output={"path": written.path, "format": written.format,
                "split_cut": written.cut.isoformat() if written.cut else None,
                "rows_without_timestamp": written.rows_without_timestamp,
                "splits": {p.name: p.describe() for p in written.splits},
                "phase_seconds": dict(progress.timings)},
        lineage=lineage,
        scheduler=scheduler,
    )
    manifest_path = paths.join(written.path, MANIFEST_FILE)
    hadoop_fs.write_text(spark, manifest_path, to_json(manifest))
    rows = {p.name: p.rows for p in written.splits}
    log.info(json.dumps({"event": "training_set_written", "path": written.path, "rows": rows}))
    return BuildResult(written.path, manifest_path, rows, (finished - started).total_seconds(), manifest)
