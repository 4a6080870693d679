"""The write path's shortcuts (scalar checks, UTC EventTime) accept and refuse exactly what the
documented rules do, checked against rules computed here: Python ints for the 64-bit range,
datetime arithmetic for EventTime."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from featurestream.dev.feature_store.errors import InvalidInput
from featurestream.dev.feature_store.model import build_feature_group
from featurestream.dev.feature_store.records import validate_record

ACCOUNT = "123456789012"


def _group() -> object:
    return build_feature_group({
        "FeatureGroupName": "checks", "RecordIdentifierFeatureName": "id", "EventTimeFeatureName": "ts",
        "FeatureDefinitions": [{"FeatureName": "id", "FeatureType": "String"},
                               {"FeatureName": "ts", "FeatureType": "String"},
                               {"FeatureName": "n", "FeatureType": "Integral"},
                               {"FeatureName": "x", "FeatureType": "Fractional"}],
        "OnlineStoreConfig": {"EnableOnlineStore": True},
    }, "us-east-1", ACCOUNT, time.time())


def _record(**values: str) -> list[dict[str, str]]:
    return [{"FeatureName": k, "ValueAsString": v} for k, v in values.items()]


def _accepts(group: object, **values: str) -> bool:
    try:
        validate_record(group, _record(id="a", ts="2026-01-01T00:00:00Z", **values))  # type: ignore[arg-type]
    except InvalidInput:
        return False
    return True


@pytest.mark.parametrize("text", [
    "9223372036854775807", "-9223372036854775808", "9223372036854775808", "-9223372036854775809",
    "+123456789012345678", "123456789012345678", "1234567890123456789", "0000000000000000000000000042",
    "-00000000000000000009223372036854775808", "99999999999999999999", "", "+", "1.0", "1e3", " 1",
])
def test_integral_values_fit_64_bits(text: str) -> None:
    digits = text.lstrip("+-")
    fits = digits.isdigit() and -(2**63) <= int(text) <= 2**63 - 1
    assert _accepts(_group(), n=text) is fits


def test_utc_event_times_match_datetime_arithmetic() -> None:
    group = _group()
    rng = random.Random(9)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for _ in range(3000):
        at = epoch + timedelta(milliseconds=rng.randint(-62_135_596_800_000, 253_402_300_799_999))
        text = at.strftime("%Y-%m-%dT%H:%M:%S") if at.year >= 1000 else \
            f"{at.year:04d}" + at.strftime("-%m-%dT%H:%M:%S")
        millis = rng.choice([None, at.microsecond // 1000])
        text += ("" if millis is None else f".{millis:03d}") + "Z"
        want = (at.replace(microsecond=0) - epoch).total_seconds() + (millis or 0) / 1000
        got = validate_record(group, _record(id="a", ts=text)).event_time  # type: ignore[arg-type]
        assert got == pytest.approx(want, abs=1e-6), text
    for bad in ("2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-01-01T24:00:00Z", "2026-01-01T00:60:00Z",
                "2026-01-01T00:00:60Z", "2026-00-10T00:00:00Z"):
        with pytest.raises(InvalidInput):
            validate_record(group, _record(id="a", ts=bad))  # type: ignore[arg-type]
