"""Feature groups as join input: any Parquet (a Glue-format offline store), or an Apache Iceberg
table (compacted output, an Iceberg-format offline store; iceberg_input.py) with the record
identifier, the EventTime feature, the features, and write_time / api_invocation_time / is_deleted.

Reading is pruned to what can matter for the label rows: EventTime <= the newest label time and,
with a TTL, >= the oldest label time - TTL (a row older than that is expired for every label, and
so is anything it could hide). With `date_partition_column` whole partitions are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.utils import AnalysisException

from featurestream.config.training_set import DEFAULT_DATE_PARTITION, FeatureGroupInput
from featurestream.errors import ConfigError, FeatureStreamError
from featurestream.training import storage
from featurestream.training.columns import API_TIME, DELETED, EVENT_TIME, RESERVED_PREFIX, WRITE_TIME
from featurestream.training.iceberg_input import is_iceberg_location, read_iceberg
from featurestream.training.pit import FeatureSide

METADATA_COLUMNS = ("write_time", "api_invocation_time", "is_deleted")
_PARTITION_SEGMENT = re.compile(r"/([A-Za-z_][A-Za-z0-9_]*)=([^/]*)(?=/)")
MAX_FILES_LISTED = 10_000


class FeatureInputError(FeatureStreamError):
    """A feature group's Parquet cannot be read."""


@dataclass
class LoadedGroup:
    side: FeatureSide
    lineage: dict[str, Any] = field(default_factory=dict)


def _as_timestamp(frame: DataFrame, column: str) -> Column:
    """EventTime as SageMaker allows it: ISO-8601 string, fractional Unix seconds, or a timestamp."""
    data_type = frame.schema[column].dataType
    col = F.col(column)
    if isinstance(data_type, T.TimestampType | T.TimestampNTZType | T.DateType):
        return col.cast(T.TimestampType())
    if isinstance(data_type, T.NumericType):
        return F.timestamp_seconds(col)
    return col.cast(T.TimestampType())


def _read(spark: SparkSession, path: str) -> DataFrame:
    try:
        return spark.read.parquet(path)
    except AnalysisException as exc:
        raise FeatureInputError(f"cannot read feature Parquet at {path}: {str(exc).splitlines()[0]}") from None


def load_group(spark: SparkSession, spec: FeatureGroupInput, index: int, *, source: str,
               label_types: dict[str, T.DataType], time_range: tuple[datetime, datetime] | None,
               availability: bool, sample_fraction: float = 0.02, catalog: str | None = None) -> LoadedGroup:
    """Read, prune and normalise one group; every naming problem is a ConfigError on its field.

    `catalog`: the Spark name of the profile's Iceberg catalog, for groups given by `table`.
    """
    where = f"feature_groups[{index}]"
    iceberg = None
    if spec.table is not None or is_iceberg_location(spark, str(spec.path)):
        iceberg = read_iceberg(spark, spec, catalog)
        path, raw = spec.source, iceberg.frame
    else:
        path = storage.normalise(str(spec.path))
        raw = _read(spark, path)
    columns = raw.columns
    for label_key, feature_key in spec.keys.items():
        if label_key not in label_types:
            raise ConfigError(source, f"{where}.keys", f"{label_key!r} is not a column of the labels")
        if feature_key not in columns:
            raise ConfigError(source, f"{where}.keys", f"{feature_key!r} is not a column of {spec.source}")
    if spec.event_time_column not in columns:
        reason = f"{spec.event_time_column!r} is not a column of {spec.source}"
        raise ConfigError(source, f"{where}.event_time_column", reason)
    if availability and "api_invocation_time" not in columns:
        raise ConfigError(source, "join.availability", f"{spec.source} has no api_invocation_time column")

    excluded = {*spec.keys.values(), spec.event_time_column, *METADATA_COLUMNS}
    if spec.date_partition_column == DEFAULT_DATE_PARTITION and DEFAULT_DATE_PARTITION not in columns:
        spec = spec.model_copy(update={"date_partition_column": None})
    if spec.date_partition_column:
        if spec.date_partition_column not in columns:
            raise ConfigError(source, f"{where}.date_partition_column", f"not a column of {spec.source}")
        if not isinstance(raw.schema[spec.date_partition_column].dataType, T.DateType | T.StringType):
            raise ConfigError(source, f"{where}.date_partition_column",
                              "must be a date partition (event_date=YYYY-MM-DD)")
        excluded.add(spec.date_partition_column)
    features = list(spec.features) if spec.features is not None else [c for c in columns if c not in excluded]
    for feature in features:
        if feature not in columns or feature in excluded:
            raise ConfigError(source, f"{where}.features", f"{feature!r} is not a feature column of {spec.source}")
    for original in spec.rename:
        if original not in features:
            raise ConfigError(source, f"{where}.rename", f"{original!r} is not one of the group's features")
    if not features:
        raise ConfigError(source, f"{where}.features", f"{spec.source} has no feature columns")
    outputs = [spec.output_name(f) for f in features]
    event_time_output = None
    if spec.include_event_time:
        event_time_output = (spec.prefix or re.sub(r"[^A-Za-z0-9_]", "_", spec.name) + "_") + "event_time"
    for name in [*outputs, *([event_time_output] if event_time_output else [])]:
        if name.startswith(RESERVED_PREFIX):
            raise ConfigError(source, f"{where}.prefix", f"output column {name!r} uses the reserved prefix _fs_")

    def normalised(frame: DataFrame) -> DataFrame:
        """Pruned, then label-side key names, the metadata columns, features by output name."""
        pruned = _prune(frame, spec, time_range, availability)[0] if time_range is not None else frame
        return pruned.select(
            *[F.col(feature_key).alias(label_key) for label_key, feature_key in spec.keys.items()],
            _as_timestamp(frame, spec.event_time_column).alias(EVENT_TIME),
            (F.col("write_time").cast(T.TimestampType()) if "write_time" in columns
             else F.lit(None).cast(T.TimestampType())).alias(WRITE_TIME),
            (F.col("api_invocation_time").cast(T.TimestampType()) if "api_invocation_time" in columns
             else F.lit(None).cast(T.TimestampType())).alias(API_TIME),
            (F.coalesce(F.col("is_deleted").cast(T.BooleanType()), F.lit(False)) if "is_deleted" in columns
             else F.lit(False)).alias(DELETED),
            *[F.col(f).alias(o) for f, o in zip(features, outputs, strict=True)],
        )

    dates = _prune(raw, spec, time_range, availability)[1] if time_range is not None else None
    lineage = _lineage(raw, spec, features, outputs, dates)
    if iceberg is not None:
        lineage.update(iceberg.lineage)
    sample, rate = None, 1.0
    files = lineage["files"]
    if iceberg is None and len(files) > 1 and not lineage["files_truncated"]:
        # The skew sample reads a spread of whole files rather than decoding every row of every file.
        count = max(1, round(len(files) * sample_fraction))
        if count < len(files):
            chosen = [files[int(i * len(files) / count)] for i in range(count)]
            sample = normalised(spark.read.option("basePath", path).schema(raw.schema).parquet(*chosen))
            rate = count / len(files)
    side = FeatureSide(
        name=spec.name, frame=normalised(raw), keys=tuple(spec.keys), features=tuple(outputs),
        ttl_ms=spec.ttl_ms, event_time_output=event_time_output, sample=sample, sample_rate=rate,
    )
    return LoadedGroup(side, lineage)


def _prune(raw: DataFrame, spec: FeatureGroupInput, time_range: tuple[datetime, datetime],
           availability: bool = False) -> tuple[DataFrame, tuple[str | None, str] | None]:
    """The pruned frame, and the (first, last) date partitions kept when the layout has them.

    Availability mode keeps EventTimes after the newest label: a record written before a label's
    time with a later EventTime (a producer clock ahead) is what GetRecord served then.
    """
    oldest, newest = time_range
    if availability:
        newest = datetime.max.replace(tzinfo=newest.tzinfo)
    lower = oldest - timedelta(milliseconds=spec.ttl_ms) if spec.ttl_ms is not None else None
    pruned = raw
    data_type = raw.schema[spec.event_time_column].dataType
    if isinstance(data_type, T.TimestampType):
        # On the raw column, so Parquet row-group statistics can skip data.
        pruned = pruned.where(F.col(spec.event_time_column) <= F.lit(newest))
        if lower is not None:
            pruned = pruned.where(F.col(spec.event_time_column) >= F.lit(lower))
    dates = None
    if spec.date_partition_column:
        # A date, or a YYYY-MM-DD string: both compare correctly with an ISO date literal.
        part = F.col(spec.date_partition_column)
        dates = (None if lower is None else lower.date().isoformat(), newest.date().isoformat())
        pruned = pruned.where(part <= F.lit(dates[1]))
        if dates[0] is not None:
            pruned = pruned.where(part >= F.lit(dates[0]))
    return pruned, dates


def _in_dates(path: str, column: str, dates: tuple[str | None, str]) -> bool:
    """Spark's partition pruning, repeated on the path: `inputFiles()` lists the unpruned relation."""
    value = dict(_PARTITION_SEGMENT.findall(path)).get(column)
    if value is None:
        return True
    value = value[:10]
    return (dates[0] is None or value >= dates[0]) and value <= dates[1]


def _lineage(raw: DataFrame, spec: FeatureGroupInput, features: list[str], outputs: list[str],
             dates: tuple[str | None, str] | None) -> dict[str, Any]:
    files = sorted(raw.inputFiles())
    if dates is not None and spec.date_partition_column:
        files = [f for f in files if _in_dates(f, spec.date_partition_column, dates)]
    partitions = sorted({
        "/".join(f"{k}={v}" for k, v in _PARTITION_SEGMENT.findall(path)) for path in files
    } - {""})
    return {
        "name": spec.name,
        "path": spec.source,
        "keys": dict(spec.keys),
        "event_time_column": spec.event_time_column,
        "features": dict(zip(features, outputs, strict=True)),
        "ttl": spec.ttl,
        "partitions": partitions,
        "file_count": len(files),
        "files": files[:MAX_FILES_LISTED],
        "files_truncated": len(files) > MAX_FILES_LISTED,
    }
