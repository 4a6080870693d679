"""Feature types, value checks and TTL arithmetic, as AWS documents them (EventTime: event_time.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeGuard

from featurestream.dev.feature_store.errors import InvalidInput
from featurestream.dev.feature_store.event_time import FRACTIONAL_RE

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
# At most 18 digits always fits a 64-bit integer: no range check needed.
_SHORT_INTEGRAL_RE = re.compile(r"[+-]?\d{1,18}")
# TtlDurationValue is a Smithy `integer` in botocore's model: a signed 32-bit value (min 1).
MAX_TTL_VALUE = 2**31 - 1

_TTL_UNIT_SECONDS = {"Seconds": 1, "Minutes": 60, "Hours": 3600, "Days": 86400, "Weeks": 604800}


def is_valid_name(name: object) -> TypeGuard[str]:
    """Feature group and feature names: 1-64 alphanumerics, '-' and '_' only inside."""
    return isinstance(name, str) and len(name) <= 64 and NAME_PATTERN.fullmatch(name) is not None


def check_scalar(feature_name: str, feature_type: str, value: str) -> None:
    """Raise InvalidInput naming the feature when `value` does not parse as `feature_type`."""
    if feature_type == INTEGRAL:
        if _INTEGRAL_RE.fullmatch(value) is None or not _fits_int64(value):
            raise InvalidInput(
                f"Invalid value '{_clip(value)}' for feature '{feature_name}' of type Integral: "
                "expected a 64-bit integer."
            )
    elif feature_type == FRACTIONAL:
        if FRACTIONAL_RE.fullmatch(value) is None:
            raise InvalidInput(
                f"Invalid value '{_clip(value)}' for feature '{feature_name}' of type Fractional: "
                "expected a floating point number."
            )


def quick_check(feature_type: str) -> Callable[[str], object] | None:
    """A test that, when it returns a match, `value` passes `check_scalar` (None: any string does).

    Without a match the value may still pass (a long Integral literal within range): ask
    `check_scalar`, which also makes the error message. One C call per value on the write path.
    """
    if feature_type == INTEGRAL:
        return _SHORT_INTEGRAL_RE.fullmatch
    if feature_type == FRACTIONAL:
        return FRACTIONAL_RE.fullmatch
    return None


def parse_scalar(feature_type: str, value: str) -> int | float | str:
    """The typed Python value of an already checked ValueAsString."""
    if feature_type == INTEGRAL:
        return _to_int(value)
    if feature_type == FRACTIONAL:
        return float(value)
    return value


def ttl_seconds(ttl: Any, where: str = "TtlDuration") -> float | None:
    """Seconds of a TtlDuration structure ({Unit, Value}); None when absent."""
    if ttl is None:
        return None
    if not isinstance(ttl, dict):
        raise InvalidInput(f"{where} must be a structure with Unit and Value.")
    unit, value = ttl.get("Unit"), ttl.get("Value")
    if not isinstance(unit, str) or unit not in _TTL_UNIT_SECONDS:
        raise InvalidInput(f"{where}.Unit must be one of {', '.join(_TTL_UNIT_SECONDS)}.")
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_TTL_VALUE:
        raise InvalidInput(f"{where}.Value must be an integer between 1 and {MAX_TTL_VALUE}.")
    return float(value * _TTL_UNIT_SECONDS[unit])


def _fits_int64(value: str) -> bool:
    # Only a long literal can leave the range; int() of thousands of digits is refused
    # (Python's int_max_str_digits) or slow, so count the digits first.
    digits = value.lstrip("+-").lstrip("0")
    return len(digits) <= 18 or (len(digits) == 19 and _INT64_MIN <= _to_int(value) <= _INT64_MAX)


def _to_int(value: str) -> int:
    # Leading zeros count against int_max_str_digits too: Java's Long.parseLong ignores them.
    sign = "-" if value.startswith("-") else ""
    return int(sign + (value.lstrip("+-").lstrip("0") or "0"))


def _clip(value: str, limit: int = 64) -> str:
    return value if len(value) <= limit else value[:limit] + "..."


def request_timestamp(value: Any) -> float | None:
    """Request timestamps: epoch seconds (boto3, the Java SDK) or an ISO-8601 string."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise InvalidInput(f"'{value}' is not a valid timestamp.") from exc
