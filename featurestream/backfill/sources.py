"""Where a backfill reads events: one interface, one class per kind of source.

An `EventSource` returns the events of [start, end) as a batch DataFrame with the group's source
schema (typed columns, the event time a timestamp, as `featurestream.engine.parsing` makes them
from a Kafka or Kinesis payload). The backfill then applies the stream's validity rules and
transforms itself, so every source is held to the same rules. `ArchiveSource` reads the raw event
archive (featurestream.engine.archive: the stream's parsed, valid events in an Iceberg table).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.config.training_set import JdbcSpec, PartitioningSpec
from featurestream.connectors.rds import JdbcReader, JdbcRelation, TimePredicate
from featurestream.engine.archive import EVENT_DATE
from featurestream.engine.parsing import event_time_column
from featurestream.errors import ConfigError
from featurestream.iceberg import IcebergCatalog


class EventSource(Protocol):
    """Events of a time range with the group's source schema."""

    def describe(self) -> str:
        """For logs and the lineage: what is read (never a secret)."""

    def read(self, spark: SparkSession, spec: FeatureGroupSpec, start: datetime, end: datetime) -> DataFrame:
        """The events with start <= event time < end (more is fine: the caller filters again)."""


def _typed(frame: DataFrame, spec: FeatureGroupSpec) -> DataFrame:
    """The source schema's columns in its types, the event time converted by the group's rule."""
    columns = [F.col(f"`{name}`").cast(type_name).alias(name) for name, type_name in spec.source.schema_.items()]
    frame = frame.select(*columns)
    field = spec.event_time.field
    return frame.withColumn(field, event_time_column(spec, F.col(f"`{field}`")))


def in_range(spec: FeatureGroupSpec, start: datetime, end: datetime) -> Column:
    field = F.col(f"`{spec.event_time.field}`")
    return (field >= F.lit(start)) & (field < F.lit(end))


@dataclass(frozen=True)
class FileSource:
    """Parquet or JSON (one object per line) files, with or without Hive-style partition folders."""

    path: str
    format: Literal["parquet", "json"] = "parquet"
    # The Parquet files' schema once read: Spark reads it with a job of its own at every read, one
    # more job per chunk.
    _schema: dict[str, StructType] = field(default_factory=dict, compare=False, repr=False)

    def describe(self) -> str:
        return f"{self.format} files {self.path}"

    def read(self, spark: SparkSession, spec: FeatureGroupSpec, start: datetime, end: datetime) -> DataFrame:
        if self.format == "json":
            # The source schema, read as the stream's from_json reads a payload.
            frame = spark.read.schema(spec.source.ddl()).json(self.path)
        else:
            known = self._schema.get("parquet")
            frame = (spark.read if known is None else spark.read.schema(known)).parquet(self.path)
            self._schema.setdefault("parquet", frame.schema)
            missing = sorted(set(spec.source.schema_) - set(frame.columns))
            if missing:
                raise ConfigError("command line", "--from-files",
                                  f"{self.path} has no column {', '.join(missing)} of source.schema")
        return _typed(frame, spec).where(in_range(spec, start, end))


@dataclass(frozen=True)
class JdbcSource:
    """An RDS table over JDBC, read with the training-set reader; the time range is pushed down."""

    jdbc: JdbcSpec
    table: str

    def describe(self) -> str:
        from featurestream.config.credentials import redact

        return f"jdbc {redact(self.jdbc.url)} table {self.table}"

    def read(self, spark: SparkSession, spec: FeatureGroupSpec, start: datetime, end: datetime) -> DataFrame:
        if spec.event_time.format != "timestamp":
            raise ConfigError("command line", "--from-jdbc-table",
                              "an RDS source needs event_time.format timestamp (the range is pushed down as one)")
        field = spec.event_time.field
        relation = JdbcRelation(table=self.table, columns=tuple(spec.source.schema_),
                                predicates=(TimePredicate(field, ">=", start), TimePredicate(field, "<", end)))
        read = JdbcReader(spark, self.jdbc, source="command line").read(relation, PartitioningSpec(),
                                                                         time_column=field)
        return _typed(read.frame, spec).where(in_range(spec, start, end))



@dataclass(frozen=True)
class ArchiveSource:
    """The raw event archive's table of the group's source (`<catalog>.<namespace>.<kind>_<topic>`).

    It holds the events as the stream parsed them (the event time already a timestamp), so only
    the types are applied; the range prunes the table's `event_date` partitions first.
    """

    catalog: IcebergCatalog
    table: str

    def describe(self) -> str:
        return f"raw event archive {self.table}"

    def read(self, spark: SparkSession, spec: FeatureGroupSpec, start: datetime, end: datetime) -> DataFrame:
        from featurestream import iceberg

        iceberg.configure_session(spark, self.catalog)  # a session started without the catalog (tests, notebooks)
        frame = spark.table(self.table)
        frame = frame.where((F.col(EVENT_DATE) >= F.lit(start.date())) & (F.col(EVENT_DATE) <= F.lit(end.date())))
        field = spec.event_time.field
        columns = [F.col(f"`{name}`").cast("timestamp" if name == field else type_name).alias(name)
                   for name, type_name in spec.source.schema_.items()]
        return frame.select(*columns).where(in_range(spec, start, end))
