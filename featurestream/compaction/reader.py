"""Reading a compacted output the safe way: through its committed manifest.

The data folder can hold files a running (or crashed) compaction wrote but never committed and
files a recent commit retired. The manifest names exactly the files of one committed version,
so these functions give a consistent view even while a compaction is running.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from featurestream.compaction.errors import CompactionError
from featurestream.compaction.manifest import Manifest, read_manifest
from featurestream.compaction.rules import DATE, HOUR
from featurestream.compaction.schema import schema_from_json
from featurestream.compaction.storage import open_store
from featurestream.connectors.offline_store import StoreUri

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def committed_manifest(output: str | StoreUri, region: str | None = None) -> Manifest:
    """The manifest of a feature group's output folder (`<output root>/<feature group>`)."""
    root = output if isinstance(output, StoreUri) else StoreUri.parse(output)
    manifest, _ = read_manifest(open_store(root, region), root)
    if manifest is None:
        raise CompactionError(f"{root} has no committed compaction (no _compaction/manifest.json)")
    return manifest


def compacted_files(output: str | StoreUri, region: str | None = None) -> list[str]:
    """The committed data files (s3:// URIs or local paths), partition by partition."""
    root = output if isinstance(output, StoreUri) else StoreUri.parse(output)
    return [str(root.join(f.path)) for f in committed_manifest(root, region).data_files()]


def snapshot_files(output: str | StoreUri, region: str | None = None) -> list[str]:
    root = output if isinstance(output, StoreUri) else StoreUri.parse(output)
    return [str(root.join(f.path)) for f in committed_manifest(root, region).snapshot or []]


def load_compacted(
    spark: SparkSession, output: str | StoreUri, *, snapshot: bool = False, s3_scheme: str = "s3a",
    region: str | None = None,
) -> DataFrame:
    """The committed compacted rows (with the partition columns), or the `latest` snapshot."""
    from pyspark.sql.types import DateType, IntegerType, StructField, StructType

    root = output if isinstance(output, StoreUri) else StoreUri.parse(output)
    manifest = committed_manifest(root, region)
    schema = schema_from_json(manifest.spark_schema) or StructType([])
    if snapshot:
        files = [root.join(f.path).spark_path(s3_scheme) for f in manifest.snapshot or []]
        return spark.read.schema(schema).parquet(*files) if files else spark.createDataFrame([], schema)
    fields = [*schema.fields, StructField(DATE, DateType(), True)]
    if manifest.partition_by == "hour":
        fields.append(StructField(HOUR, IntegerType(), True))
    full = StructType(fields)
    files = [root.join(f.path).spark_path(s3_scheme) for f in manifest.data_files()]
    if not files:
        return spark.createDataFrame([], full)
    return (spark.read.schema(full).option("basePath", root.join("data").spark_path(s3_scheme))
            .parquet(*files))
