"""Named exceptions. Entry points map them to exit codes (2 for config, 1 for the rest)."""

from __future__ import annotations

from pathlib import Path


class FeatureStreamError(Exception):
    """Base class of every error this project raises on purpose."""


class ConfigError(FeatureStreamError):
    """A configuration file or argument is wrong; raised before Spark starts (exit code 2).

    The message is one line naming the file, the field and the reason, so a user can fix it
    without reading a traceback.
    """

    def __init__(self, source: str | Path, field: str, reason: str) -> None:
        self.source = str(source)
        self.field = field
        self.reason = reason
        where = f"{self.source}: {field}" if field else self.source
        super().__init__(f"{where}: {reason}")


class SinkError(FeatureStreamError):
    """Writing to the online store failed for good; the micro-batch fails so Spark retries it."""
