"""A small micro-batch of a source's query, run by one Spark job and read on the driver as Arrow.

The foreachBatch body (`pipeline.SourceBatchWriter`) has two ways through a micro-batch:

- cached (any size): cache the union of the groups' engine outputs, count every group's
  outcomes in one Spark job, then per group a Spark job for its records (mapInArrow on the
  executors, or a collect for the driver), and one per late/DLQ file;
- collected (this module; a batch whose union fits the driver): one projection of the union
  (`collected_columns`), one Arrow collect (the only Spark job: source, parse, engine, state),
  then the counters and freshness points computed here from the Arrow table, exactly as the
  cached path's aggregation (`pipeline._counter_columns`, `pipeline._freshness_column`), and each
  group's records written from the driver (`OnlineStoreSink.write_arrow`). Late events, invalid
  records and the archive's events, when a batch has any, go back to Spark as a local frame of
  their Arrow rows (`local_frame`) and through the same Spark writers as on the cached path.

Which way a batch goes is `SourceBatchWriter`'s rule (see there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from featurestream.engine import aggregation

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from featurestream.config.feature_group import FeatureGroupSpec

# Columns of the union of the groups' engine outputs (see `pipeline._tagged`).
GROUP, TO_DLQ = "_group", "_to_dlq"
COUNTERS = ("aggregated", "duplicates", "late_events", "dlq", "records", "decay_records", "folded")
# Points of the distribution of a batch's record times kept for the freshness metric.
FRESHNESS_POINTS = 32
# The collected projection's per-group columns: records in `aggregation.records`' layout, and
# the engine's late rows (late events and invalid records) whole.
_RECORDS, _LATE = "_r{}", "_l{}"


def records_column(index: int) -> str:
    return _RECORDS.format(index)


def late_column(index: int) -> str:
    return _LATE.format(index)


def collected_columns(specs: Sequence[FeatureGroupSpec], archived: str | None) -> list[Column]:
    """The columns of the union that the collected path reads: what the counters need, each group's
    records (built by Spark, as `aggregation.records` builds them) and late rows, the archive's events."""
    from pyspark.sql import functions as F

    kind = F.col(aggregation.KIND)
    columns = [F.col(name) for name in (GROUP, aggregation.KIND, aggregation.AGGREGATED, aggregation.DUPLICATES,
                                        aggregation.FOLDED, aggregation.AS_OF, TO_DLQ)]
    for index, spec in enumerate(specs):
        mine = F.col(GROUP) == index
        _, fields = aggregation.record_selection(spec, within=f"_g{index}")
        columns.append(F.when(mine & (kind == aggregation.RECORD), F.struct(*fields)).alias(records_column(index)))
        columns.append(F.when(mine & (kind == aggregation.LATE), F.col(f"_g{index}")).alias(late_column(index)))
    if archived is not None:
        columns.append(F.col(archived))
    return columns


def as_table(batches: Sequence[pa.RecordBatch]) -> pa.Table | None:
    """The collected batches as one table; None for an empty micro-batch (Spark sends no batch)."""
    return pa.Table.from_batches(batches) if batches else None


def _count(mask: pa.ChunkedArray | pa.Array) -> int:
    """Rows where `mask` is true (null counts as false, as Spark's count_if)."""
    return int(pc.sum(pc.cast(pc.fill_null(mask, False), pa.int64())).as_py() or 0)


def _sum(values: pa.ChunkedArray) -> int:
    """Spark's coalesce(sum(x), 0): nulls skipped, 0 when there is nothing to add."""
    return int(pc.sum(values).as_py() or 0)


def group_counters(part: pa.Table) -> dict[str, int]:
    """One group's rows of the union → `pipeline.COUNTERS`, the same numbers as `_counter_columns`."""
    kind, aggregated = part[aggregation.KIND], part[aggregation.AGGREGATED]
    to_dlq = pc.fill_null(part[TO_DLQ], False)
    is_record = pc.fill_null(pc.equal(kind, aggregation.RECORD), False)
    is_late = pc.fill_null(pc.equal(kind, aggregation.LATE), False)
    return {
        "aggregated": _sum(aggregated),
        "duplicates": _sum(part[aggregation.DUPLICATES]),
        "late_events": _count(pc.and_(is_late, pc.invert(to_dlq))),
        "dlq": _count(pc.and_(is_late, to_dlq)),
        "records": _count(is_record),
        # `= 0` on a null is null: not a decay record (as in Spark).
        "decay_records": _count(pc.and_(is_record, pc.fill_null(pc.equal(aggregated, 0), False))),
        "folded": _sum(part[aggregation.FOLDED]),
    }


def freshness_points(part: pa.Table) -> list[float]:
    """EventTimes (epoch s) of the group's records that carry new events, at FRESHNESS_POINTS
    evenly spaced quantiles: for quantile p the smallest time t such that at least p of the times
    are <= t (percentile_approx's definition, exact here). Empty when no record is fresh."""
    fresh = pc.and_(pc.fill_null(pc.equal(part[aggregation.KIND], aggregation.RECORD), False),
                    pc.fill_null(pc.greater(part[aggregation.AGGREGATED], 0), False))
    as_of = part[aggregation.AS_OF].filter(fresh).drop_null()
    if len(as_of) == 0:
        return []
    micros = sorted(pc.cast(as_of, pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_pylist())
    n = len(micros)
    points = [i / (FRESHNESS_POINTS - 1) for i in range(FRESHNESS_POINTS)]
    return [micros[max(math.ceil(p * n), 1) - 1] / 1e6 for p in points]


def group_rows(table: pa.Table, index: int) -> pa.Table:
    return table.filter(pc.equal(table[GROUP], index))


def struct_batches(table: pa.Table, column: str) -> list[pa.RecordBatch]:
    """The non-null values of a struct column as record batches of its fields."""
    values = table.filter(pc.is_valid(table[column]))[column]
    out = []
    for chunk in values.chunks:
        if len(chunk):
            fields = [chunk.type.field(i).name for i in range(chunk.type.num_fields)]
            out.append(pa.RecordBatch.from_arrays(chunk.flatten(), names=fields))
    return out


def local_frame(spark: SparkSession, batches: Sequence[pa.RecordBatch], schema: StructType) -> DataFrame:
    """Arrow rows that came from Spark (`schema` is their Spark type) back as a DataFrame, with no job.

    The batches go to the JVM as an Arrow stream, as pyspark's own createDataFrame(pandas) sends
    them, skipping the pandas round trip (which would turn nullable integers into floats and
    maps into lists). Spark 3.5 has no public call for it (4.0's createDataFrame takes a
    pyarrow Table).
    """
    from pyspark.sql import DataFrame as SparkDataFrame
    from pyspark.sql.pandas.serializers import ArrowStreamSerializer

    context: Any = spark.sparkContext
    jvm: Any = context._jvm
    jiter = context._serialize_to_jvm(list(batches), ArrowStreamSerializer(),
                                      lambda name: jvm.PythonSQLUtils.readArrowStreamFromFile(name),
                                      lambda: jvm.ArrowIteratorServer())
    return SparkDataFrame(jvm.PythonSQLUtils.toDataFrame(jiter, schema.json(), spark._jsparkSession), spark)
