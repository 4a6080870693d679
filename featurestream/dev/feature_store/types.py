"""Feature types, value checks, EventTime parsing and TTL arithmetic, as AWS documents them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeGuard

from featurestream.dev.feature_store.errors import InvalidInput

INTEGRAL = "Integral"
FRACTIONAL = "Fractional"
STRING = "String"
FEATURE_TYPES = (INTEGRAL, FRACTIONAL, STRING)
COLLECTION_TYPES = ("List", "Set", "Vector")

# Columns the offline store adds to every row; AWS rejects them as feature names.
RESERVED_FEATURE_NAMES = ("is_deleted", "write_time", "api_invocation_time")

# A record (names and values) may not exceed 350 KB.
MAX_RECORD_BYTES = 350 * 1024

NAME_PATTERN = re.compile(r"[a-zA-Z0-9]([_-]*[a-zA-Z0-9]){0,63}")

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_INTEGRAL_RE = re.compile(r"[+-]?\d+")
# What java.lang.Double.parseDouble accepts in practice (the Spark connector sends
# Double.toString, e.g. "1.7E9"), without Python's extras such as "1_0" or "inf".
_FRACTIONAL_RE = re.compile(r"[+-]?(NaN|Infinity|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)")
# AWS: yyyy-MM-dd'T'HH:mm:ssZ or yyyy-MM-dd'T'HH:mm:ss.SSSZ (UTC 'Z' or a numeric offset).
_ISO_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}))?(Z|[+-]\d{2}:?\d{2})"
)

_TTL_UNIT_SECONDS = {"Seconds": 1, "Minutes": 60, "Hours": 3600, "Days": 86400, "Weeks": 604800}


def is_valid_name(name: object) -> TypeGuard[str]:
    """Feature group and feature names: 1-64 alphanumerics, '-' and '_' only inside."""
    return isinstance(name, str) and len(name) <= 64 and NAME_PATTERN.fullmatch(name) is not None


def check_scalar(feature_name: str, feature_type: str, value: str) -> None:
    """Raise InvalidInput naming the feature when `value` does not parse as `feature_type`."""
    if feature_type == INTEGRAL:
        # Only a long literal can leave the int64 range.
        if _INTEGRAL_RE.fullmatch(value) is None or (
            len(value) > 18 and not _INT64_MIN <= int(value) <= _INT64_MAX
        ):
            raise InvalidInput(
                f"Invalid value '{_clip(value)}' for feature '{feature_name}' of type Integral: "
                "expected a 64-bit integer."
            )
    elif feature_type == FRACTIONAL:
        if _FRACTIONAL_RE.fullmatch(value) is None:
            raise InvalidInput(
                f"Invalid value '{_clip(value)}' for feature '{feature_name}' of type Fractional: "
                "expected a floating point number."
            )


def parse_scalar(feature_type: str, value: str) -> int | float | str:
    """The typed Python value of an already checked ValueAsString."""
    if feature_type == INTEGRAL:
        return int(value)
    if feature_type == FRACTIONAL:
        return float(value)
    return value


def parse_event_time(feature_name: str, feature_type: str, value: str) -> float:
    """EventTime as Unix seconds: Fractional seconds, or an ISO-8601 String as AWS accepts it."""
    if feature_type == FRACTIONAL:
        check_scalar(feature_name, feature_type, value)
        seconds = float(value)
        if seconds != seconds or seconds in (float("inf"), float("-inf")) or seconds < 0:
            raise InvalidInput(f"Invalid EventTime '{_clip(value)}' for feature '{feature_name}'.")
        return seconds
    match = _ISO_RE.fullmatch(value)
    if match is None:
        raise InvalidInput(
            f"Invalid EventTime '{_clip(value)}' for feature '{feature_name}': expected "
            "yyyy-MM-dd'T'HH:mm:ssZ or yyyy-MM-dd'T'HH:mm:ss.SSSZ."
        )
    year, month, day, hour, minute, second, millis, zone = match.groups()
    try:
        stamp = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second),
            int(millis or 0) * 1000, tzinfo=_zone(zone),
        )
    except ValueError as exc:
        raise InvalidInput(f"Invalid EventTime '{value}' for feature '{feature_name}': {exc}.") from exc
    return stamp.timestamp()


def ttl_seconds(ttl: Any, where: str = "TtlDuration") -> float | None:
    """Seconds of a TtlDuration structure ({Unit, Value}); None when absent."""
    if ttl is None:
        return None
    if not isinstance(ttl, dict):
        raise InvalidInput(f"{where} must be a structure with Unit and Value.")
    unit, value = ttl.get("Unit"), ttl.get("Value")
    if unit not in _TTL_UNIT_SECONDS:
        raise InvalidInput(f"{where}.Unit must be one of {', '.join(_TTL_UNIT_SECONDS)}.")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInput(f"{where}.Value must be an integer >= 1.")
    return float(value * _TTL_UNIT_SECONDS[unit])


def iso_utc(seconds: float) -> str:
    """ISO-8601 UTC with milliseconds, the form used for ExpiresAt."""
    stamp = datetime.fromtimestamp(seconds, tz=UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _zone(text: str) -> timezone:
    if text == "Z":
        return UTC
    sign = 1 if text[0] == "+" else -1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _clip(value: str, limit: int = 64) -> str:
    return value if len(value) <= limit else value[:limit] + "..."
