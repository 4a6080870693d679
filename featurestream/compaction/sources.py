"""Reading the new source files, their schema, and how much output they will make."""

from __future__ import annotations

import io
from functools import reduce

import pyarrow as pa
import pyarrow.parquet as pq
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from featurestream.compaction.context import RunContext
from featurestream.compaction.schema import check_columns, merge_schemas
from featurestream.compaction.state import CommittedState
from featurestream.compaction.storage import open_store
from featurestream.compaction.table import TableState, check_table_schema
from featurestream.connectors.offline_store import SourceFile, StoreUri

SAMPLE_FILES = 8
_NAME = "_fs_file_name"


def _parent(uri: StoreUri) -> StoreUri:
    return StoreUri(uri.scheme, uri.bucket, uri.key.rsplit("/", 1)[0])


def _name(uri: StoreUri) -> str:
    return uri.key.rsplit("/", 1)[-1]


def run_schema(ctx: RunContext, current: TableState | None, new: list[SourceFile]) -> StructType:
    """The output schema: the table's, extended by the source's new columns."""
    source_schema = ctx.target.schema
    if source_schema is None:
        # No FeatureDefinitions (a group given by path): merge the footers of the new files.
        paths = [ctx.spark_path(f.uri) for f in new]
        source_schema = ctx.spark.read.option("mergeSchema", "true").parquet(*paths).schema
    if current is not None:
        check_table_schema(current, source_schema)
    schema = merge_schemas(current.schema if current else None, source_schema)
    check_columns(schema, ctx.target.record_identifier, ctx.target.event_time, ctx.pcols)
    return schema


def read_new(ctx: RunContext, new: list[SourceFile], listed: list[SourceFile], schema: StructType) -> DataFrame:
    """The new files' rows: whole hour folders where every file is new, single files elsewhere.

    Resolving thousands of explicit paths costs Spark seconds on the driver; listing a few
    hundred folders a fraction of that. A folder read whole is semi-joined on
    `_metadata.file_name` with the listed new names, so a file that landed after our listing
    (not in the ledger yet) is left for the next run. Folders that also hold already-compacted
    files (late files in an old hour) are read file by file.
    """
    new_uris = {f.uri for f in new}
    mixed = {_parent(f.uri) for f in listed if f.uri not in new_uris}
    whole = sorted({_parent(f.uri) for f in new} - mixed)
    frames = []
    if whole:
        names = "\n".join(sorted(_name(f.uri) for f in new if _parent(f.uri) not in mixed))
        # One literal split on the JVM: no py4j call per name, no Python worker.
        wanted = ctx.spark.range(1).select(F.explode(F.split(F.lit(names), "\n")).alias(_NAME))
        rows = ctx.read_parquet(whole, schema).withColumn(_NAME, F.col("_metadata.file_name"))
        frames.append(rows.join(F.broadcast(wanted), on=_NAME, how="left_semi").drop(_NAME))
    singles = [f.uri for f in new if _parent(f.uri) in mixed]
    if singles:
        frames.append(ctx.read_parquet(singles, schema))
    return reduce(lambda a, b: a.unionByName(b), frames)


def output_bytes_per_source_byte(ctx: RunContext, current: TableState | None, committed: CommittedState | None,
                                 new: list[SourceFile]) -> float:
    """Expected compacted bytes per source byte: the table's bytes over the source bytes it was
    made from, else sampled."""
    table_bytes = int(current.summary.get("total-files-size", "0")) if current else 0
    if committed and committed.source_bytes and table_bytes:
        return table_bytes / committed.source_bytes
    step = max(1, len(new) // SAMPLE_FILES)
    source_store = open_store(ctx.target.source, ctx.settings.region)
    tables, size = [], 0
    for file in new[::step][:SAMPLE_FILES]:
        sampled = source_store.read(file.uri)
        if sampled is not None:
            tables.append(pq.read_table(io.BytesIO(sampled.data)))
            size += len(sampled.data)
    if not tables or size == 0:
        return 1.0
    buffer = io.BytesIO()
    pq.write_table(pa.concat_tables(tables, promote_options="default"), buffer, compression=ctx.settings.compression)
    # A small sample compresses worse than a full file: this errs towards smaller files.
    return min(2.0, max(0.01, buffer.tell() / size))
