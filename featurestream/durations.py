"""Durations written as in the configs: `500ms`, `30s`, `5m`, `1h`, `7d`."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration_ms(text: str) -> int:
    """Return the duration in milliseconds; raise ValueError with the accepted forms."""
    match = _DURATION.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"bad duration {text!r}: expected a whole number and a unit, e.g. 500ms, 30s, 5m, 1h, 7d")
    value = int(match.group(1))
    if value <= 0:
        raise ValueError(f"bad duration {text!r}: must be greater than zero")
    return value * _UNIT_MS[match.group(2)]


def format_duration(ms: int) -> str:
    """The shortest exact spelling, used in feature names (`txn_count_5m`)."""
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_MS[unit]
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"
