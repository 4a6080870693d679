"""Write the training set: Parquet or CSV, local or s3a://, optionally split by time.

Layout under `output.path`: `data/` (no split) or `train/` and `validation/`, and `manifest.json`
beside them. Rows whose timestamp is at or after the cut go to validation; rows without a
timestamp go to train (they carry no features, and the manifest counts them).

CSV holds what was read, or nothing: Spark's CSV defaults cut timestamps to milliseconds and strip
a value's leading and trailing spaces (`card-00006 ` would become another key), so the writer
sets microsecond timestamp formats, keeps white space, and quotes as RFC 4180 does (a quote is
doubled; a value with a delimiter, quote or line break is quoted; a null is an empty field, an
empty string `""`). Columns CSV has no text form for (arrays, maps, structs, binary) are refused
before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pyspark.sql import Column, DataFrame, Observation, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from featurestream.config.training_set import OutputSpec
from featurestream.errors import ConfigError, FeatureStreamError
from featurestream.io import paths
from featurestream.training import storage
from featurestream.training.pit import quoted

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_DISTINCT_LABELS = 50
SPLIT_COLUMN = "_fs_split"


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


# Both ways (write and read back): what was read is what is written.
CSV_OPTIONS = {
    "header": "true",
    "timestampFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX",
    "timestampNTZFormat": "yyyy-MM-dd'T'HH:mm:ss.SSSSSS",
    "dateFormat": "yyyy-MM-dd",
    "ignoreLeadingWhiteSpace": "false",
    "ignoreTrailingWhiteSpace": "false",
    "quote": '"',
    "escape": '"',
    "multiLine": "true",
}
_NOT_IN_CSV = (T.ArrayType, T.MapType, T.StructType, T.BinaryType)


def check_csv_columns(schema: T.StructType, source: str) -> None:
    """ConfigError (`output.format`) naming every column CSV cannot hold as text."""
    refused = [f"{field.name!r} ({field.dataType.simpleString()})" for field in schema.fields
               if isinstance(field.dataType, _NOT_IN_CSV)]
    if refused:
        raise ConfigError(source, "output.format",
                          f"csv cannot hold column {', '.join(refused)}: write parquet, or leave the column out")


def _writer(frame: DataFrame, spec: OutputSpec) -> DataFrame:
    return frame.coalesce(spec.files) if spec.files else frame


def _save(frame: DataFrame, spec: OutputSpec, path: str, partition_by: str | None = None) -> None:
    writer = _writer(frame, spec).write.mode("error")
    if partition_by:
        writer = writer.partitionBy(partition_by)
    if spec.format == "csv":
        writer.options(**CSV_OPTIONS).csv(path)
    else:
        writer.parquet(path)


def _metrics(split: Column, names: list[str], timestamp_column: str, feature_columns: list[str]) -> list[Column]:
    """Rows and nulls per feature, per split, and rows without a timestamp: computed while writing."""
    exprs = [F.sum(F.col(timestamp_column).isNull().cast("long")).alias("_no_ts")]
    for s, name in enumerate(names):
        here = split == F.lit(name)
        exprs.append(F.sum(here.cast("long")).alias(f"_rows_{s}"))
        exprs.extend(F.sum((here & F.col(c).isNull()).cast("long")).alias(f"_null_{s}_{i}")
                     for i, c in enumerate(feature_columns))
    return exprs


def write(spark: SparkSession, joined: DataFrame, timestamp_column: str, spec: OutputSpec, cut: datetime | None,
          feature_columns: list[str], *, source: str = "<config>") -> WrittenSet:
    """One pass over the joined rows: the split is a partition column of a staging write whose
    folders are then moved into place, and the counts are observed during that same write."""
    if spec.format == "csv":
        check_csv_columns(joined.schema, source)
    root = paths.join(storage.normalise(spec.path))
    if storage.exists(spark, root):
        if spec.mode == "error":
            raise OutputExistsError(f"{root} exists and output.mode is error")
        # A previous run may have had other splits: start from an empty folder.
        storage.delete(spark, root)
    names = ["data"] if cut is None else ["train", "validation"]
    ts = F.col(timestamp_column).cast(T.TimestampType())
    split = F.lit("data") if cut is None else F.when(ts >= F.lit(cut), "validation").otherwise("train")
    observation = Observation("featurestream-training-set")
    tagged = joined.withColumn(SPLIT_COLUMN, split)
    observed = tagged.observe(observation, *_metrics(F.col(SPLIT_COLUMN), names, timestamp_column, feature_columns))
    if cut is None:
        _save(observed.drop(SPLIT_COLUMN), spec, paths.join(root, "data"))
    else:
        staging = paths.join(root, "_staging")
        _save(observed, spec, staging, partition_by=SPLIT_COLUMN)
        for name in names:
            source = paths.join(staging, f"{SPLIT_COLUMN}={name}")
            if storage.exists(spark, source):
                storage.rename(spark, source, paths.join(root, name))
            else:
                # An empty split still gets a readable folder with the schema.
                _save(joined.limit(0), spec, paths.join(root, name))
        storage.delete(spark, staging)
    metrics = observation.get
    parts = []
    for s, name in enumerate(names):
        rows = int(metrics.get(f"_rows_{s}") or 0)
        part = SplitOutput(name, paths.join(root, name), rows=rows)
        part.null_rate = {c: (round(int(metrics.get(f"_null_{s}_{i}") or 0) / rows, 6) if rows else 0.0)
                          for i, c in enumerate(feature_columns)}
        parts.append(part)
    return WrittenSet(root, spec.format, parts, cut, rows_without_timestamp=int(metrics.get("_no_ts") or 0))


def read_back(spark: SparkSession, written: WrittenSet, part: SplitOutput, schema: T.StructType) -> DataFrame:
    if written.format == "csv":
        return spark.read.schema(schema).options(**CSV_OPTIONS).csv(part.path)
    return spark.read.parquet(part.path)


def describe_labels(frame: DataFrame, part: SplitOutput, label_columns: list[str]) -> None:
    """The label distribution of one written split (reads only the label columns)."""
    for column in label_columns:
        # Backticks: a label may be called `amount.usd`, which unquoted would be a struct path.
        part.label_distribution[column] = _distribution(frame.select(F.col(quoted(column)).alias("label")))


def _distribution(frame: DataFrame) -> dict[str, Any]:
    """Counts per value of `frame`'s one column, `label`, when there are few values
    (classification), else a numeric summary."""
    column = "label"
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
