"""The labelled rows: from RDS over JDBC (a table or a query), or from Parquet (e.g. a history export).

Rows from the database are read once and kept (memory and disk) for the whole build, so the
database is hit once and every later step -- time range, join, split -- sees the same snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.utils import AnalysisException

from featurestream.config.training_set import LabelsSpec
from featurestream.connectors.rds import JdbcReader, JdbcRelation, TimePredicate
from featurestream.errors import ConfigError, FeatureStreamError
from featurestream.training import storage
from featurestream.training.columns import RESERVED_PREFIX
from featurestream.training.pit import quoted

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class LabelsReadError(FeatureStreamError):
    """The labels cannot be read."""


@dataclass
class Labels:
    frame: DataFrame
    timestamp_column: str
    rows: int
    time_range: tuple[datetime, datetime] | None
    lineage: dict[str, Any] = field(default_factory=dict)

    def unpersist(self) -> None:
        self.frame.unpersist()


def _predicates(spec: LabelsSpec) -> tuple[TimePredicate, ...]:
    found: list[TimePredicate] = []
    if spec.start is not None:
        found.append(TimePredicate(spec.timestamp_column, ">=", spec.start))
    if spec.end is not None:
        found.append(TimePredicate(spec.timestamp_column, "<", spec.end))
    return tuple(found)


def _from_jdbc(spark: SparkSession, spec: LabelsSpec, source: str) -> tuple[DataFrame, dict[str, Any]]:
    assert spec.jdbc is not None
    reader = JdbcReader(spark, spec.jdbc, source=source)
    relation = JdbcRelation(
        table=spec.table, query=spec.query,
        columns=tuple(spec.columns) if spec.columns else None, predicates=_predicates(spec),
    )
    read = reader.read(relation, spec.partitioning, time_column=spec.timestamp_column)
    return read.frame, read.lineage


def _from_parquet(spark: SparkSession, spec: LabelsSpec) -> tuple[DataFrame, dict[str, Any]]:
    assert spec.path is not None
    try:
        frame = spark.read.parquet(storage.normalise(spec.path))
    except AnalysisException as exc:
        raise LabelsReadError(f"cannot read labels at {spec.path}: {str(exc).splitlines()[0]}") from None
    if spec.timestamp_column in frame.columns:
        ts = F.col(spec.timestamp_column)
        if spec.start is not None:
            frame = frame.where(ts >= F.lit(spec.start))
        if spec.end is not None:
            frame = frame.where(ts < F.lit(spec.end))
    if spec.columns:
        missing = [c for c in spec.columns if c not in frame.columns]
        if missing:
            raise ConfigError("<config>", "labels.columns", f"{missing} not in {spec.path}")
        # Backticks: `amount.usd` is a column of that name, not field usd of a struct amount.
        frame = frame.select(*[F.col(quoted(c)) for c in spec.columns])
    lineage = {"kind": "parquet", "path": spec.path, "files": len(frame.inputFiles()),
               "read_at": datetime.now(UTC).isoformat()}
    return frame, lineage


def read_labels(spark: SparkSession, spec: LabelsSpec, *, source: str) -> Labels:
    frame, lineage = _from_jdbc(spark, spec, source) if spec.jdbc is not None else _from_parquet(spark, spec)
    for column in (spec.timestamp_column, *spec.label_columns):
        if column not in frame.columns:
            raise ConfigError(source, "labels", f"{column!r} is not a column of the labels")
    reserved = [c for c in frame.columns if c.startswith(RESERVED_PREFIX)]
    if reserved:
        raise ConfigError(source, "labels", f"columns {reserved} use the reserved prefix {RESERVED_PREFIX}")
    ts_type = frame.schema[spec.timestamp_column].dataType
    if not isinstance(ts_type, T.TimestampType | T.TimestampNTZType | T.DateType):
        raise ConfigError(source, "labels.timestamp_column",
                          f"{spec.timestamp_column!r} is {ts_type.simpleString()}, expected a timestamp")
    if spec.jdbc is not None:
        # One read of the database: every later step sees the same snapshot. (Parquet is re-read.)
        frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
    ts = F.col(spec.timestamp_column).cast(T.TimestampType())
    # unix micros, so no Python-side time zone conversion can shift the range.
    summary = frame.agg(F.count(F.lit(1)).alias("n"), F.min(F.unix_micros(ts)).alias("lo"),
                        F.max(F.unix_micros(ts)).alias("hi")).first()
    assert summary is not None
    rows = int(summary["n"])
    time_range = None
    if summary["lo"] is not None:
        time_range = (_from_micros(summary["lo"]), _from_micros(summary["hi"]))
    lineage.update({
        "rows": rows,
        "timestamp_column": spec.timestamp_column,
        "time_range": [t.isoformat() for t in time_range] if time_range else None,
    })
    return Labels(frame, spec.timestamp_column, rows, time_range, lineage)


def _from_micros(micros: int) -> datetime:
    return EPOCH + timedelta(microseconds=int(micros))
