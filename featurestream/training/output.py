"""Write the training set: Parquet or CSV, local or s3a://, optionally split by time.

Layout under `output.path`: `data/` (no split) or `train/` and `validation/`, and `manifest.json`
beside them. Rows whose timestamp is at or after the cut go to validation; rows without a
timestamp go to train (they carry no features, and the manifest counts them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from featurestream.config.training_set import OutputSpec
from featurestream.errors import FeatureStreamError
from featurestream.training import storage

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_DISTINCT_LABELS = 50


class OutputExistsError(FeatureStreamError):
    """output.mode is `error` and the output folder exists."""


@dataclass
class SplitOutput:
    name: str
    path: str
    rows: int = 0
    null_rate: dict[str, float] = field(default_factory=dict)
    label_distribution: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        return {"path": self.path, "rows": self.rows, "null_rate": self.null_rate,
                "label_distribution": self.label_distribution}


@dataclass
class WrittenSet:
    path: str
    format: str
    splits: list[SplitOutput]
    cut: datetime | None = None
    rows_without_timestamp: int = 0


def validation_cut(labels: DataFrame, timestamp_column: str, spec: OutputSpec) -> datetime | None:
    """The split time: given, or the (1 - fraction) quantile of the label times."""
    if spec.split is None:
        return None
    if spec.split.validation_start is not None:
        return spec.split.validation_start
    assert spec.split.validation_fraction is not None
    micros = labels.select(F.unix_micros(F.col(timestamp_column).cast(T.TimestampType())).alias("t"))
    quantile = micros.approxQuantile("t", [1.0 - spec.split.validation_fraction], 0.0001)
    return EPOCH + timedelta(microseconds=int(quantile[0])) if quantile else None


def _writer(frame: DataFrame, spec: OutputSpec) -> DataFrame:
    return frame.coalesce(spec.files) if spec.files else frame


def write(spark: SparkSession, joined: DataFrame, timestamp_column: str, spec: OutputSpec,
          cut: datetime | None) -> WrittenSet:
    root = storage.normalise(spec.path).rstrip("/")
    if storage.exists(spark, root):
        if spec.mode == "error":
            raise OutputExistsError(f"{root} exists and output.mode is error")
        # A previous run may have had other splits: start from an empty folder.
        storage.delete(spark, root)
    if cut is None:
        parts = [SplitOutput("data", f"{root}/data")]
        frames = [joined]
    else:
        ts = F.col(timestamp_column).cast(T.TimestampType())
        parts = [SplitOutput("train", f"{root}/train"), SplitOutput("validation", f"{root}/validation")]
        frames = [joined.where(ts.isNull() | (ts < F.lit(cut))), joined.where(ts >= F.lit(cut))]
    for part, frame in zip(parts, frames, strict=True):
        writer = _writer(frame, spec).write.mode("error")
        if spec.format == "csv":
            writer.option("header", "true").csv(part.path)
        else:
            writer.parquet(part.path)
    return WrittenSet(root, spec.format, parts, cut)


def read_back(spark: SparkSession, written: WrittenSet, part: SplitOutput, schema: T.StructType) -> DataFrame:
    if written.format == "csv":
        return spark.read.schema(schema).option("header", "true").csv(part.path)
    return spark.read.parquet(part.path)


def describe_split(frame: DataFrame, part: SplitOutput, timestamp_column: str, feature_columns: list[str],
                   label_columns: list[str]) -> int:
    """Fill rows, null rate per feature and label distribution from the written data (one pass + one per label).

    Returns the number of rows without a timestamp.
    """
    aggregates = [F.count(F.lit(1)).alias("_rows"),
                  F.sum(F.col(timestamp_column).isNull().cast("long")).alias("_no_ts")]
    aggregates += [F.sum(F.col(c).isNull().cast("long")).alias(f"_null_{i}") for i, c in enumerate(feature_columns)]
    row = frame.agg(*aggregates).first()
    assert row is not None
    part.rows = int(row["_rows"])
    part.null_rate = {
        c: (round(int(row[f"_null_{i}"] or 0) / part.rows, 6) if part.rows else 0.0)
        for i, c in enumerate(feature_columns)
    }
    for column in label_columns:
        part.label_distribution[column] = _distribution(frame, column)
    return int(row["_no_ts"] or 0)


def _distribution(frame: DataFrame, column: str) -> dict[str, Any]:
    """Counts per value when there are few values (classification), else a numeric summary."""
    counts = frame.groupBy(column).count().orderBy(F.col("count").desc()).limit(MAX_DISTINCT_LABELS + 1).collect()
    if len(counts) <= MAX_DISTINCT_LABELS:
        return {"kind": "counts", "counts": {("null" if r[column] is None else str(r[column])): int(r["count"])
                                             for r in counts}}
    data_type = frame.schema[column].dataType
    if isinstance(data_type, T.NumericType):
        stats = frame.agg(F.min(column).alias("min"), F.max(column).alias("max"), F.avg(column).alias("mean"),
                          F.stddev(column).alias("stddev"), F.sum(F.col(column).isNull().cast("long")).alias("nulls")
                          ).first()
        assert stats is not None
        return {"kind": "numeric", **{k: (float(stats[k]) if stats[k] is not None else None)
                                      for k in ("min", "max", "mean", "stddev")}, "nulls": int(stats["nulls"] or 0)}
    return {"kind": "top", "counts": {str(r[column]): int(r["count"]) for r in counts[:MAX_DISTINCT_LABELS]},
            "truncated": True}
