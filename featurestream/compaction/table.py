"""The compacted output as an Apache Iceberg table: create it, read its committed state, read
partitions of a snapshot, replace partitions in one commit, expire snapshots, remove orphans.

Spark's Iceberg runtime does the writing and the commit (`writeTo(...).overwrite(filter)`: the
touched partitions' old files are removed and the new ones added in one snapshot, which the
catalog switches atomically). The run's bookkeeping (ledger, delete log, `latest` files, file
sizing figures) rides in that snapshot's summary under `featurestream.state` (state.py), so the
rows and the record of which source files they came from are committed together.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from featurestream.compaction.errors import CompactionError
from featurestream.compaction.layout import parse_partition_key
from featurestream.compaction.rules import DATE, HOUR
from featurestream.connectors.offline_store import StoreUri

log = logging.getLogger(__name__)

STATE_PROPERTY = "featurestream.state"
# Table properties fixed when the table is created (a run with other settings exits 2).
FIXED_PROPERTIES = ("partition-by", "deletes", "record-identifier", "event-time")
_PROPERTY_PREFIX = "featurestream."
_TABLE_NAME = re.compile(r"[^a-z0-9_]")
_TEN_YEARS_MS = 10 * 365 * 24 * 3600 * 1000


def table_name_for(group: str) -> str:
    """A Glue/Athena-friendly table name: lower case, `-` → `_` (Glue lower-cases names anyway)."""
    return _TABLE_NAME.sub("_", group.lower())


@dataclass(frozen=True)
class TableRef:
    """An Iceberg table in a Spark catalog; `location` where it is created (None: the catalog's)."""

    catalog: str
    namespace: str
    name: str
    location: StoreUri | None = None

    @property
    def identifier(self) -> str:
        """`catalog.namespace.name` as Spark parses it (each part quoted)."""
        return ".".join(f"`{part}`" for part in (self.catalog, self.namespace, self.name))

    def __str__(self) -> str:
        return f"{self.catalog}.{self.namespace}.{self.name}"


@dataclass(frozen=True)
class TableState:
    snapshot_id: int | None  # None: created, nothing committed yet
    summary: dict[str, str]
    properties: dict[str, str]
    schema: StructType  # data columns (partition columns dropped)
    location: str
    # (snapshot id, commit time in ms, summary) of every snapshot the table keeps, oldest first.
    snapshots: list[tuple[int, int, dict[str, str]]]

    def setting(self, name: str) -> str | None:
        return self.properties.get(_PROPERTY_PREFIX + name)


def _jvm_table(spark: SparkSession, ref: TableRef) -> Any:
    """The Java `org.apache.iceberg.Table`, refreshed: the catalog may cache an older version."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    table = jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, ref.identifier)
    table.refresh()
    return table


def exists(spark: SparkSession, ref: TableRef) -> bool:
    return bool(spark._jsparkSession.catalog().tableExists(f"{ref.catalog}.{ref.namespace}.{ref.name}"))


def _summary(snapshot: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in dict(snapshot.summary()).items()}


def load_state(spark: SparkSession, ref: TableRef, partition_cols: list[str]) -> TableState | None:
    """The table's current snapshot, summary, properties, schema and retained snapshots; None if
    there is no table."""
    if not exists(spark, ref):
        return None
    table = _jvm_table(spark, ref)
    snapshot = table.currentSnapshot()
    summary = _summary(snapshot) if snapshot is not None else {}
    properties = {str(k): str(v) for k, v in dict(table.properties()).items()}
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    spark_type = jvm.org.apache.iceberg.spark.SparkSchemaUtil.convert(table.schema())
    full = StructType.fromJson(json.loads(spark_type.json()))
    schema = StructType([f for f in full.fields if f.name not in partition_cols])
    return TableState(int(snapshot.snapshotId()) if snapshot is not None else None, summary, properties, schema,
                      str(table.location()), _snapshots(table))


def create(spark: SparkSession, ref: TableRef, schema: StructType, partition_schema: StructType,
           partition_cols: list[str], settings: dict[str, str], compression: str) -> None:
    """Create the table (no snapshot yet): all columns optional, identity partitions."""
    columns = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in [*schema.fields, *partition_schema.fields])
    properties = {
        "format-version": "2",
        "write.parquet.compression-codec": compression,
        # Our layout decides which task writes which file: no shuffle or sort of Iceberg's own.
        "write.distribution-mode": "none",
        "write.spark.accept-any-schema": "true",
        "write.metadata.delete-after-commit.enabled": "true",
        "write.metadata.previous-versions-max": "20",
        # A commit racing another fails instead of being re-applied on top of it: the state in
        # our summary was built from the snapshot we read.
        "commit.retry.num-retries": "0",
        # Snapshots are expired by compaction's gc_grace (expire_superseded), not by Iceberg's
        # default age of 5 days, which would cut short a longer grace.
        "history.expire.max-snapshot-age-ms": str(_TEN_YEARS_MS),
        **{_PROPERTY_PREFIX + k: v for k, v in settings.items()},
    }
    props = ", ".join(f"'{k}' = '{v}'" for k, v in properties.items())
    # Plain s3:// (or a local path): the files' paths in the metadata are then ones Athena, Trino,
    # DuckDB and pyiceberg read; Spark reaches s3:// through the catalog's file IO (featurestream.iceberg).
    location = f" LOCATION '{ref.location}'" if ref.location is not None else ""
    spark.sql(f"CREATE NAMESPACE IF NOT EXISTS `{ref.catalog}`.`{ref.namespace}`")
    spark.sql(f"CREATE TABLE {ref.identifier} ({columns}) USING iceberg "
              f"PARTITIONED BY ({', '.join(f'`{c}`' for c in partition_cols)}){location} TBLPROPERTIES ({props})")


def partitions_filter(keys: list[str]) -> Column:
    """`event_date = d [AND event_hour = h]` OR … over the given partition keys."""
    terms: list[Column] = []
    for key in keys:
        day, hour = parse_partition_key(key)
        term = F.col(DATE) == F.lit(day.date())
        if hour is not None:
            term = term & (F.col(HOUR) == F.lit(hour))
        terms.append(term)
    out = terms[0]
    for term in terms[1:]:
        out = out | term
    return out


def _partition_key(value: Any, partition_cols: list[str]) -> str:
    day: date = value[DATE]
    key = f"{DATE}={day:%Y-%m-%d}"
    return f"{key}/{HOUR}={value[HOUR]}" if HOUR in partition_cols else key


def data_files(spark: SparkSession, ref: TableRef, snapshot_id: int, partition_cols: list[str],
               keys: list[str] | None = None) -> dict[str, list[tuple[str, int]]]:
    """(file path, bytes) of the snapshot's data files per partition key (only `keys` when given)."""
    files = spark.read.option("snapshot-id", str(snapshot_id)).table(f"{ref.identifier}.`files`")
    out: dict[str, list[tuple[str, int]]] = {}
    for row in files.select("partition", "file_path", "file_size_in_bytes").collect():
        key = _partition_key(row["partition"], partition_cols)
        if keys is None or key in keys:
            out.setdefault(key, []).append((str(row["file_path"]), int(row["file_size_in_bytes"])))
    return out


def read(spark: SparkSession, ref: TableRef, snapshot_id: int, keys: list[str] | None = None) -> DataFrame:
    """The rows of one snapshot (only the partitions `keys` when given)."""
    frame = spark.read.option("snapshot-id", str(snapshot_id)).table(ref.identifier)
    return frame.where(partitions_filter(keys)) if keys else frame


def replace_partitions(rows: DataFrame, ref: TableRef, keys: list[str], *, base_snapshot: int | None,
                       state: str, compression: str, max_file_bytes: int) -> None:
    """One commit: the partitions `keys` now hold exactly `rows` (which must lie in them).

    Serializable isolation from the snapshot the run read: a concurrent commit touching these
    partitions fails ours rather than being silently replaced.
    """
    writer = (rows.writeTo(ref.identifier)
              .option("distribution-mode", "none")
              .option("fanout-enabled", "true")
              .option("merge-schema", "true")
              .option("check-ordering", "false")
              .option("compression-codec", compression)
              .option("target-file-size-bytes", str(max_file_bytes))
              .option("isolation-level", "serializable")
              .option(f"snapshot-property.{STATE_PROPERTY}", state))
    if base_snapshot is not None:
        writer = writer.option("validate-from-snapshot-id", str(base_snapshot))
    writer.overwrite(partitions_filter(keys))


def _snapshots(table: Any) -> list[tuple[int, int, dict[str, str]]]:
    out = [(int(s.snapshotId()), int(s.timestampMillis()), _summary(s)) for s in table.snapshots()]
    return sorted(out, key=lambda s: s[1])


def snapshots(spark: SparkSession, ref: TableRef) -> list[tuple[int, int, dict[str, str]]]:
    """(snapshot id, commit time in ms, summary) of every snapshot the table keeps, oldest first."""
    return _snapshots(_jvm_table(spark, ref))


def expire_superseded(spark: SparkSession, ref: TableRef, now_ms: int, grace_ms: int) -> int:
    """Expire every snapshot superseded more than `grace_ms` ago; Iceberg deletes the files that
    only those snapshots used. Returns how many snapshots were expired."""
    table = _jvm_table(spark, ref)
    current = table.currentSnapshot()
    if current is None:
        return 0
    ordered = _snapshots(table)
    doomed = [sid for (sid, _, _), (_, superseded_at, _) in itertools.pairwise(ordered)
              if now_ms - superseded_at >= grace_ms and sid != int(current.snapshotId())]
    if not doomed:
        return 0
    expire = table.expireSnapshots()
    for sid in doomed:
        expire = expire.expireSnapshotId(sid)
    expire.cleanExpiredFiles(True).commit()
    return len(doomed)


def remove_orphan_files(spark: SparkSession, ref: TableRef, older_than_ms: int) -> int:
    """Delete files under the table's data/ and metadata/ that no snapshot references (a run that
    died before its commit leaves such files). Returns how many."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    table = _jvm_table(spark, ref)
    actions = jvm.org.apache.iceberg.spark.actions.SparkActions.get(spark._jsparkSession)
    removed = 0
    for folder in ("data", "metadata"):
        result = (actions.deleteOrphanFiles(table).location(f"{table.location().rstrip('/')}/{folder}")
                  .olderThan(older_than_ms).execute())
        removed += sum(1 for _ in result.orphanFileLocations())
    if removed:
        log.info("orphan files of %s removed: %d", ref, removed)
    return removed


def check_table_schema(state: TableState, schema: StructType) -> None:
    """A column whose type differs between the table and the run cannot be merged."""
    known = {f.name.lower(): f for f in state.schema.fields}
    for field in schema.fields:
        previous = known.get(field.name.lower())
        if previous is not None and previous.dataType != field.dataType:
            raise CompactionError(f"column {field.name!r} is {previous.dataType.simpleString()} in the compacted "
                                  f"table but {field.dataType.simpleString()} in newer files")


def rewrite_all(rows: DataFrame, ref: TableRef, *, base_snapshot: int, state: str, compression: str,
                target_file_bytes: int) -> None:
    """One commit that replaces every data file of the table with `rows` (Iceberg's own
    distribution and file sizing), failing if anything was committed since `base_snapshot`."""
    (rows.writeTo(ref.identifier)
     .option("compression-codec", compression)
     .option("target-file-size-bytes", str(target_file_bytes))
     .option("isolation-level", "serializable")
     .option("validate-from-snapshot-id", str(base_snapshot))
     .option(f"snapshot-property.{STATE_PROPERTY}", state)
     .overwrite(F.lit(True)))
