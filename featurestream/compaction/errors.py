"""Named failures of a compaction run (all exit code 1 except configuration problems)."""

from __future__ import annotations

from featurestream.errors import FeatureStreamError


class CompactionError(FeatureStreamError):
    """A compaction run failed; nothing it wrote is visible (the table's snapshot is unchanged)."""


class LockBusyError(CompactionError):
    """Another run holds the feature group's lock and its heartbeat is fresh."""


class LockLostError(CompactionError):
    """Our lock was taken over (our heartbeat stalled past the stale timeout): we must not commit."""


class ConcurrentCommitError(CompactionError):
    """The table changed under us: someone committed without holding the lock."""


class PreconditionFailed(CompactionError):
    """A conditional write found a different version of the object than expected."""


class LayoutError(CompactionError):
    """Source rows do not belong to the partition their path says (not SageMaker's layout)."""
