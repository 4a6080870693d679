"""EventTime: parsing within AWS's documented range, and UTC calendar fields for any instant.

The Feature Store quotas page (docs.aws.amazon.com/sagemaker/latest/dg/feature-store-quotas.html)
accepts a String EventTime `yyyy-MM-dd'T'HH:mm:ssZ` / `yyyy-MM-dd'T'HH:mm:ss.SSSZ` or Fractional
Unix seconds, and requires it to lie within [0000-01-01T00:00:00Z, 9999-12-31T23:59:59.999999999Z].
Python's datetime stops at years 1 and 9999, so instants outside that (year 0000, or an ExpiresAt
far past 9999) are shifted by whole 400-year Gregorian cycles, which repeat the calendar exactly.
"""

from __future__ import annotations

import functools
import math
import re
from datetime import UTC, date, datetime, timedelta, timezone

from featurestream.dev.feature_store.errors import InvalidInput

# [0000-01-01T00:00:00Z, 9999-12-31T23:59:59.999999999Z] in Unix seconds (the upper bound excluded).
MIN_EVENT_TIME = -62_167_219_200.0
MAX_EVENT_TIME = 253_402_300_800.0

_CYCLE_S = 146_097 * 86_400  # 400 Gregorian years: a whole number of days and weeks
_Y2K = 946_684_800
_EPOCH_DAY = date(1970, 1, 1)  # 2000-01-01T00:00:00Z, the start of a cycle inside datetime's range
_ISO_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}))?(Z|[+-]\d{2}:?\d{2})"
)
# What java.lang.Double.parseDouble accepts in practice (the Spark connector sends
# Double.toString, e.g. "1.7E9"), without Python's extras such as "1_0" or "inf".
FRACTIONAL_RE = re.compile(r"[+-]?(NaN|Infinity|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)")


def parse_event_time(feature_name: str, is_fractional: bool, value: str) -> float:
    """EventTime as Unix seconds; a ValidationError outside the format or the documented range."""
    if is_fractional:
        seconds = float(value) if FRACTIONAL_RE.fullmatch(value) else math.nan
    else:
        seconds = _parse_iso(feature_name, value)
    # NaN fails both comparisons, so it is refused here too.
    if not MIN_EVENT_TIME <= seconds < MAX_EVENT_TIME:
        raise InvalidInput(
            f"Invalid EventTime '{_clip(value)}' for feature '{feature_name}': it must be "
            + ("Unix seconds " if is_fractional else "")
            + "within [0000-01-01T00:00:00Z, 9999-12-31T23:59:59.999999999Z]."
        )
    return seconds


def _parse_iso(feature_name: str, value: str) -> float:
    match = _ISO_RE.fullmatch(value)
    if match is None:
        raise InvalidInput(
            f"Invalid EventTime '{_clip(value)}' for feature '{feature_name}': expected "
            "yyyy-MM-dd'T'HH:mm:ssZ or yyyy-MM-dd'T'HH:mm:ss.SSSZ."
        )
    year, month, day, hour, minute, second, millis, zone = match.groups()
    if zone == "Z" and year != "0000":
        # The common case (every write's EventTime, in UTC): the date's midnight from a cache and
        # the time of day added, the same arithmetic as `_timestamp` without building datetimes.
        hours, minutes, seconds = int(hour), int(minute), int(second)
        midnight = _midnight(value[:10])
        if midnight is not None and hours < 24 and minutes < 60 and seconds < 60:
            return midnight + (hours * 3600 + minutes * 60 + seconds) + int(millis or 0) * 1000 / 1e6
    # Year 0000 is read one cycle later (0400 has the same calendar) and shifted back.
    shift = 1 if year == "0000" else 0
    try:
        stamp = datetime(
            int(year) + 400 * shift, int(month), int(day), int(hour), int(minute), int(second),
            int(millis or 0) * 1000, tzinfo=_zone(zone),
        )
    except ValueError as exc:
        raise InvalidInput(f"Invalid EventTime '{value}' for feature '{feature_name}': {exc}.") from exc
    return _timestamp(stamp) - shift * _CYCLE_S


@functools.lru_cache(maxsize=4096)
def _midnight(date_text: str) -> int | None:
    """Unix seconds of 00:00Z on a `yyyy-MM-dd` date (year 0001 on); None for a date that does not exist."""
    try:
        return (date(int(date_text[:4]), int(date_text[5:7]), int(date_text[8:10])) - _EPOCH_DAY).days * 86_400
    except ValueError:
        return None  # the full parse reports it


def _timestamp(stamp: datetime) -> float:
    # datetime.timestamp() overflows at the edges (9999-12-31 at UTC-1 is year 10000 in UTC).
    delta = stamp - datetime(1970, 1, 1, tzinfo=UTC)
    return delta.days * 86_400 + delta.seconds + delta.microseconds / 1e6


def utc_fields(seconds: float) -> tuple[int, datetime]:
    """(year, a datetime with the same month, day and time of day) for any finite instant."""
    cycles = math.floor((seconds - _Y2K) / _CYCLE_S)
    stamp = datetime.fromtimestamp(seconds - cycles * _CYCLE_S, tz=UTC)
    return stamp.year + 400 * cycles, stamp


def iso_utc(seconds: float) -> str:
    """ISO-8601 UTC with milliseconds (ExpiresAt); a year above 9999 is signed, as Java prints it."""
    year, stamp = utc_fields(seconds)
    text = f"{year:04d}" if 0 <= year <= 9999 else f"{year:+05d}"
    return text + stamp.strftime("-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def partition_path(seconds: float) -> str:
    """year=YYYY/month=MM/day=DD/hour=HH of an event time (UTC), as the offline store lays it out."""
    year, stamp = utc_fields(seconds)
    return f"year={year:04d}" + stamp.strftime("/month=%m/day=%d/hour=%H")


def compact_utc(seconds: float) -> str:
    """YYYYMMDDTHHMMSSZ, the stamp that begins an offline file's name."""
    year, stamp = utc_fields(seconds)
    return f"{year:04d}" + stamp.strftime("%m%dT%H%M%SZ")


def _zone(text: str) -> timezone:
    if text == "Z":
        return UTC
    sign = 1 if text[0] == "+" else -1
    digits = text[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _clip(value: str, limit: int = 64) -> str:
    return value if len(value) <= limit else value[:limit] + "..."
