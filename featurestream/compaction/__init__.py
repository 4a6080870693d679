"""Offline-store compaction: SageMaker's many small Glue-format Parquet files → deduplicated,
sorted, right-sized Parquet per feature group, incrementally, atomically and crash-safely.

Entry points: `compact_feature_group` (one group, a session passed in), `load_compacted` /
`compacted_files` (read what a committed run produced). See docs/compaction.md.
"""

from featurestream.compaction.errors import (
    CompactionError,
    ConcurrentCommitError,
    LayoutError,
    LockBusyError,
    LockLostError,
)
from featurestream.compaction.job import CompactionSettings, FeatureGroupTarget, compact_feature_group
from featurestream.compaction.reader import compacted_files, load_compacted, snapshot_files
from featurestream.compaction.summary import RunSummary

__all__ = [
    "CompactionError",
    "CompactionSettings",
    "ConcurrentCommitError",
    "FeatureGroupTarget",
    "LayoutError",
    "LockBusyError",
    "LockLostError",
    "RunSummary",
    "compact_feature_group",
    "compacted_files",
    "load_compacted",
    "snapshot_files",
]
