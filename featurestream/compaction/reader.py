"""Reading a compacted table: through Iceberg, at its current snapshot or a pinned one.

Any Iceberg reader sees the same committed rows (Spark, pyiceberg, Athena, Trino, DuckDB over
pyiceberg's scan); these helpers add the `latest/` snapshot, which lives beside the table and is
named by the snapshot's summary (state.py).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from featurestream.compaction.errors import CompactionError
from featurestream.compaction.state import CommittedState
from featurestream.compaction.table import STATE_PROPERTY, TableRef, snapshots
from featurestream.connectors.offline_store import StoreUri
from featurestream.io import hadoop_fs

_METADATA_FILE = re.compile(r"^(?:v)?(\d+)(?:-[^/]*)?\.metadata\.json$")

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def committed_state(spark: SparkSession, ref: TableRef, snapshot_id: int | None = None) -> tuple[int, CommittedState]:
    """(snapshot id, the compaction state it carries): the current snapshot, or `snapshot_id`."""
    kept = snapshots(spark, ref)
    if not kept:
        raise CompactionError(f"table {ref} has no committed compaction")
    chosen = kept[-1] if snapshot_id is None else next((s for s in kept if s[0] == snapshot_id), None)
    if chosen is None:
        raise CompactionError(f"table {ref} has no snapshot {snapshot_id} (expired, or another table's)")
    state = CommittedState.decode(chosen[2].get(STATE_PROPERTY))
    if state is None:
        raise CompactionError(f"snapshot {chosen[0]} of {ref} was not written by a compaction")
    return chosen[0], state


def load_compacted(spark: SparkSession, ref: TableRef, *, snapshot_id: int | None = None) -> DataFrame:
    """The committed compacted rows (with the partition columns), at `snapshot_id` if given."""
    reader = spark.read
    if snapshot_id is not None:
        reader = reader.option("snapshot-id", str(snapshot_id))
    return reader.table(ref.identifier)


def snapshot_files(spark: SparkSession, ref: TableRef, output: str | StoreUri,
                   snapshot_id: int | None = None) -> list[str]:
    """The `latest/` files (s3:// URIs or local paths) of the current (or given) snapshot."""
    root = output if isinstance(output, StoreUri) else StoreUri.parse(output)
    _, state = committed_state(spark, ref, snapshot_id)
    return [str(root.join(f.path)) for f in state.snapshot or []]


def load_latest(spark: SparkSession, ref: TableRef, output: str | StoreUri, *, s3_scheme: str = "s3a",
                snapshot_id: int | None = None) -> DataFrame:
    """The `latest/` snapshot: one row per record identifier, its newest kept row."""
    files = [StoreUri.parse(f).spark_path(s3_scheme) for f in snapshot_files(spark, ref, output, snapshot_id)]
    schema = load_compacted(spark, ref).schema
    data = [f for f in schema.fields if f.name not in ("event_date", "event_hour")]
    from pyspark.sql.types import StructType

    return spark.read.schema(StructType(data)).parquet(*files) if files else spark.createDataFrame([], StructType(data))


def _newest_metadata(spark: SparkSession, location: str) -> str:
    names = hadoop_fs.list_names(spark, f"{location}/metadata")
    versions = [(int(m.group(1)), n) for n in names if (m := _METADATA_FILE.match(n))]
    if not versions:
        raise CompactionError(f"{location} is not an Iceberg table (no metadata/*.metadata.json)")
    return f"{location}/metadata/{max(versions)[1]}"


def compacted_at(spark: SparkSession, location: str | StoreUri,
                 s3_scheme: str = "s3a") -> tuple[DataFrame, CommittedState]:
    """A compacted table read by its location, without a catalog: its rows at the snapshot of the
    newest metadata file, and the compaction state that snapshot carries (the ledger, …)."""
    root = location if isinstance(location, StoreUri) else StoreUri.parse(location)
    metadata = _newest_metadata(spark, root.spark_path(s3_scheme))
    jvm = spark.sparkContext._jvm
    assert jvm is not None
    table = jvm.org.apache.iceberg.hadoop.HadoopTables(spark.sparkContext._jsc.hadoopConfiguration()).load(metadata)
    snapshot = table.currentSnapshot()
    if snapshot is None:
        raise CompactionError(f"table at {root} has no committed compaction")
    state = CommittedState.decode(dict(snapshot.summary()).get(STATE_PROPERTY))
    if state is None:
        raise CompactionError(f"snapshot {snapshot.snapshotId()} of the table at {root} is not a compaction's")
    frame = spark.read.format("iceberg").option("snapshot-id", str(snapshot.snapshotId())).load(metadata)
    return frame, state
