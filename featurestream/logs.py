"""JSON log lines for jobs: one object per line, query and batch ids when the caller adds them."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        # Messages that are already JSON objects are merged rather than double-encoded.
        try:
            payload = json.loads(message)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            entry.update(payload)
        else:
            entry["message"] = message
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record is emitted, not when logging was set up.

    A program (or a test runner) that replaces sys.stderr and later closes the old one would
    otherwise leave the handler writing to a closed file: logging then prints "--- Logging error
    ---" with the traceback of the exception being handled, whose text was never redacted.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        pass  # always sys.stderr


def configure_json_logging(level: int = logging.INFO) -> None:
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # py4j chatters at INFO on every call.
    logging.getLogger("py4j").setLevel(logging.WARNING)


def filter_every_root_handler(log_filter: logging.Filter) -> None:
    """Add `log_filter` to every root handler and to logging's last-resort handler; idempotent.

    A filter on the root logger would not see records of child loggers, a handler's filter does.
    Handlers added later need another call.
    """
    handlers = list(logging.getLogger().handlers)
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    for handler in handlers:
        if log_filter not in handler.filters:
            handler.addFilter(log_filter)
