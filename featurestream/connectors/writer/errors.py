"""The writer's named failures; each one fails the micro-batch so Spark replays it."""

from __future__ import annotations

from featurestream.errors import SinkError


class RetriesExhausted(SinkError):
    """A call kept failing with retryable errors past max_attempts or the batch deadline."""


class WriteFailed(SinkError):
    """The service refused the write for a reason no retry fixes (missing group, access denied)."""


class BatchWriteUnsupported(SinkError):
    """BatchWriteRecord is unavailable (old botocore or service) and write_mode requires it."""


class TooManyRejected(SinkError):
    """More records were rejected than a DLQ should absorb in one batch (or no DLQ is configured)."""
