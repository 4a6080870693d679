"""Offline-store compaction: SageMaker's many small Glue-format Parquet files → one Apache Iceberg
table per feature group (deduplicated, sorted, right-sized Parquet), incrementally, committed
atomically by Iceberg, crash-safely.

Entry points: `compact_feature_group` (one group, a session passed in), `load_compacted` /
`load_latest` (read what a committed run produced). See docs/compaction.md.
"""

from featurestream.compaction.errors import (
    CompactionError,
    ConcurrentCommitError,
    LayoutError,
    LockBusyError,
    LockLostError,
)
from featurestream.compaction.job import CompactionSettings, FeatureGroupTarget, compact_feature_group
from featurestream.compaction.reader import load_compacted, load_latest, snapshot_files
from featurestream.compaction.summary import RunSummary
from featurestream.compaction.table import TableRef

__all__ = [
    "CompactionError",
    "CompactionSettings",
    "ConcurrentCommitError",
    "FeatureGroupTarget",
    "LayoutError",
    "LockBusyError",
    "LockLostError",
    "RunSummary",
    "TableRef",
    "compact_feature_group",
    "load_compacted",
    "load_latest",
    "snapshot_files",
]
