"""Dead-letter queue of the online-store writer: records the service rejected for good.

Layout: Parquet under `<dlq path>/batch_id=<N>/`, one directory per micro-batch, replaced as a
whole when the batch is replayed (dynamic partition overwrite), so a replay never duplicates
entries. Columns: feature_group, record_identifier, event_time, error_code, error_message,
record (the original record as a JSON object of ValueAsString), sink, failed_at, and batch_id
(the partition column). Local paths and s3a:// both work: Spark's writer does the I/O.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from featurestream.connectors.writer.records import Record

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

DLQ_COLUMNS = (
    "feature_group", "record_identifier", "event_time", "error_code", "error_message",
    "record", "sink", "failed_at", "batch_id",
)
DLQ_SCHEMA = (
    "feature_group string, record_identifier string, event_time string, error_code string, "
    "error_message string, record string, sink string, failed_at timestamp, batch_id long"
)
# Messages are the service's; keep them, but not unboundedly (a 350 KB value echoed back).
MAX_MESSAGE_CHARS = 2_000


@dataclass(frozen=True)
class DlqEntry:
    feature_group: str
    record_identifier: str | None
    event_time: str | None
    error_code: str
    error_message: str
    record: str
    sink: str
    failed_at: str

    @classmethod
    def rejected(cls, feature_group: str, record: Record, code: str, message: str, sink: str) -> DlqEntry:
        return cls(
            feature_group=feature_group,
            record_identifier=record.identifier,
            event_time=record.event_time,
            error_code=code,
            error_message=message[:MAX_MESSAGE_CHARS],
            record=json.dumps(record.as_dict(), sort_keys=True),
            sink=sink,
            failed_at=datetime.now(UTC).isoformat(),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> DlqEntry:
        return cls(**json.loads(text))


def _row(entry: DlqEntry, batch_id: int) -> tuple[Any, ...]:
    failed_at = datetime.fromisoformat(entry.failed_at)
    return (entry.feature_group, entry.record_identifier, entry.event_time, entry.error_code,
            entry.error_message, entry.record, entry.sink, failed_at, batch_id)


def write_entries(spark: SparkSession, entries: list[DlqEntry], path: str, batch_id: int) -> None:
    """Write the entries collected from the executors (driver side)."""
    frame = spark.createDataFrame([_row(e, batch_id) for e in entries], DLQ_SCHEMA)
    write_frame(frame, path)


def write_frame(frame: DataFrame, path: str) -> None:
    """Write a DataFrame with DLQ_COLUMNS, replacing only the batch_id partitions it holds."""
    (
        frame.select(*DLQ_COLUMNS)
        .coalesce(1)
        .write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy("batch_id")
        .parquet(path)
    )
