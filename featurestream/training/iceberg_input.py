"""Feature groups stored as Apache Iceberg tables (a compacted table, or an Iceberg-format offline
store), read at one snapshot so that a build can be repeated exactly.

By name: `namespace.table` in the profile's catalog. By location: the table's folder (its newest
`metadata/*.metadata.json`) or one metadata file, read without a catalog. The snapshot read is
the config's `snapshot_id` when given, else the table's current one; either way the read is
pinned to it and the manifest records it (with the metadata file that holds it), so a rebuild
with that `snapshot_id` reads the same rows after any number of later commits, as long as the
snapshot has not been expired (compaction's `gc_grace`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame, SparkSession

from featurestream.config.training_set import FeatureGroupInput
from featurestream.errors import FeatureStreamError
from featurestream.io import hadoop_fs
from featurestream.training import storage

_METADATA_FILE = re.compile(r"^(?:v)?(\d+)(?:-[^/]*)?\.metadata\.json$")


class IcebergInputError(FeatureStreamError):
    """An Iceberg feature table (or the snapshot asked for) cannot be read."""


@dataclass(frozen=True)
class IcebergRead:
    frame: DataFrame
    lineage: dict[str, Any]  # table or location, snapshot_id, metadata_location


def is_iceberg_location(spark: SparkSession, path: str) -> bool:
    """A table's metadata file, or a folder holding `metadata/` (and no Parquet layout of ours)."""
    normalised = storage.normalise(path).rstrip("/")
    if normalised.endswith(".metadata.json"):
        return True
    return hadoop_fs.exists(spark, f"{normalised}/metadata")


def _newest_metadata(spark: SparkSession, folder: str) -> str:
    """The table folder's newest metadata file (by its version number)."""
    names = hadoop_fs.list_names(spark, f"{folder}/metadata")
    versions = [(int(m.group(1)), n) for n in names if (m := _METADATA_FILE.match(n))]
    if not versions:
        raise IcebergInputError(f"{folder}/metadata holds no Iceberg metadata file")
    return f"{folder}/metadata/{max(versions)[1]}"


def _snapshot(table: Any, wanted: int | None, what: str) -> int:
    if wanted is None:
        current = table.currentSnapshot()
        if current is None:
            raise IcebergInputError(f"{what} has no snapshot yet (nothing committed)")
        return int(current.snapshotId())
    if table.snapshot(wanted) is None:
        raise IcebergInputError(f"{what} has no snapshot {wanted}: expired (compaction's gc_grace) or another table's")
    return wanted


def read_iceberg(spark: SparkSession, spec: FeatureGroupInput, catalog: str | None) -> IcebergRead:
    """The group's rows at one snapshot, and what the manifest needs to read them again."""
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    try:
        if spec.table is not None:
            if catalog is None:
                raise IcebergInputError(f"{spec.name}: table {spec.table} needs the profile's catalog section")
            name = f"{catalog}.{spec.table}"
            table = jvm.org.apache.iceberg.spark.Spark3Util.loadIcebergTable(spark._jsparkSession, name)
            table.refresh()
            snapshot_id = _snapshot(table, spec.snapshot_id, f"table {name}")
            frame = spark.read.option("snapshot-id", str(snapshot_id)).table(name)
            where: dict[str, Any] = {"table": name}
        else:
            assert spec.path is not None
            path = storage.normalise(spec.path).rstrip("/")
            metadata = path if path.endswith(".metadata.json") else _newest_metadata(spark, path)
            hadoop = spark.sparkContext._jsc.hadoopConfiguration()
            table = jvm.org.apache.iceberg.hadoop.HadoopTables(hadoop).load(metadata)
            snapshot_id = _snapshot(table, spec.snapshot_id, f"Iceberg table {metadata}")
            frame = spark.read.format("iceberg").option("snapshot-id", str(snapshot_id)).load(metadata)
            where = {"location": spec.path}
    except IcebergInputError:
        raise
    except Exception as exc:  # py4j: no such table, unreadable metadata
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise IcebergInputError(f"cannot read Iceberg table {spec.source}: {first}") from None
    metadata_location = str(table.operations().current().metadataFileLocation())
    return IcebergRead(frame, {**where, "format": "iceberg", "snapshot_id": snapshot_id,
                               "metadata_location": metadata_location})
