"""Issue 19, finding 5: AWS's documented ranges and limits, answered with AWS's error codes.

Sources: botocore's service models (TtlDurationValue is a Smithy `integer`, a signed 32-bit
value) and the Feature Store quotas page (docs.aws.amazon.com/sagemaker/latest/dg/
feature-store-quotas.html): record identifier at most 2 KB; Integral a signed 64-bit integer;
Fractional an IEEE 754 double; EventTime within [0000-01-01T00:00:00Z, 9999-12-31T23:59:59.999999999Z].
Before the fix the emulator answered 500 to several of these and accepted the others.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pytest

from tests.dev.feature_store.helpers import as_dict, http_status, raw_http, record

pytestmark = pytest.mark.feature_store

T0 = "2024-05-01T10:00:00Z"
FRACTIONAL_TIME = [
    {"FeatureName": "id", "FeatureType": "String"},
    {"FeatureName": "et", "FeatureType": "Fractional"},
]


def _status(exc: Any) -> tuple[str, int]:
    return exc.response["Error"]["Code"], exc.response["ResponseMetadata"]["HTTPStatusCode"]


@pytest.mark.parametrize(
    ("values", "ttl"),
    [
        ({"id": "a", "ts": T0, "n": "7" * 5000}, None),                     # was 500
        ({"id": "a", "ts": T0, "n": "-" + "9" * 20}, None),
        ({"id": "a", "ts": T0}, {"Unit": "Weeks", "Value": 10**400}),        # was 500
        ({"id": "a", "ts": T0}, {"Unit": "Weeks", "Value": 10**300}),        # was accepted
        ({"id": "a", "ts": T0}, {"Unit": "Seconds", "Value": 2**31}),
        ({"id": "r" * (300 * 1024), "ts": T0}, None),                        # was accepted
        ({"id": "r" * 2049, "ts": T0}, None),
        ({"id": "é" * 1025, "ts": T0}, None),                                # 2,050 bytes in UTF-8
        ({"id": "a", "ts": "9999-12-31T23:59:59-23:59"}, None),              # was accepted
        ({"id": "a", "ts": "0000-01-01T00:00:00+00:01"}, None),              # before year 0000
    ],
)
def test_out_of_range_put_record_is_a_validation_error(
    rt_raw: Any, make_group: Any, values: dict[str, str], ttl: dict[str, Any] | None
) -> None:
    name = make_group()["FeatureGroupName"]
    kwargs: dict[str, Any] = {"FeatureGroupName": name, "Record": record(**values)}
    if ttl is not None:
        kwargs["TtlDuration"] = ttl
    with pytest.raises(rt_raw.exceptions.ValidationError) as info:
        rt_raw.put_record(**kwargs)
    assert _status(info.value) == ("ValidationError", 400)


@pytest.mark.parametrize("event_time", ["1e300", "253402300800", "-62167219201", "Infinity", "NaN"])
def test_fractional_event_time_outside_the_documented_range(rt: Any, make_group: Any, event_time: str) -> None:
    name = make_group(FRACTIONAL_TIME, event_time="et")["FeatureGroupName"]
    with pytest.raises(rt.exceptions.ValidationError) as info:
        rt.put_record(FeatureGroupName=name, Record=record(id="a", et=event_time))
    assert _status(info.value) == ("ValidationError", 400)


def test_the_documented_boundaries_are_accepted(rt: Any, make_group: Any, emulator: Any, offline_dir: Any) -> None:
    from tests.dev.feature_store.helpers import offline_rows

    desc = make_group()
    name = desc["FeatureGroupName"]
    edges = {"first": "0000-01-01T00:00:00Z", "last": "9999-12-31T23:59:59.999Z",
             "shifted": "9999-12-31T23:59:59+00:00"}
    for rid, ts in edges.items():
        rt.put_record(FeatureGroupName=name, Record=record(id=rid, ts=ts, n=2**63 - 1, x="1e300"))
    rt.put_record(FeatureGroupName=name, Record=record(id="k" * 2048, ts=T0, n=-(2**63)))
    for rid, ts in edges.items():
        assert as_dict(rt.get_record(FeatureGroupName=name, RecordIdentifierValueAsString=rid)["Record"])["ts"] == ts
    assert rt.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="k" * 2048)["Record"]
    emulator.flush()
    rows = offline_rows(offline_dir, desc)
    assert sorted(r["id"] for r in rows) == sorted([*edges, "k" * 2048])


def test_the_largest_ttl_round_trips_its_expires_at(rt: Any, make_group: Any) -> None:
    """2^31-1 weeks is a valid TtlDuration; its ExpiresAt lies past year 9999 (was a 500)."""
    name = make_group()["FeatureGroupName"]
    rt.put_record(FeatureGroupName=name, Record=record(id="forever", ts=T0),
                  TtlDuration={"Unit": "Weeks", "Value": 2**31 - 1})
    got = rt.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="forever",
                        ExpirationTimeResponse="Enabled")
    assert as_dict(got["Record"])["id"] == "forever"
    # numpy's calendar reaches far past datetime's; a year above 9999 gets a sign, as
    # java.time.Instant prints it.
    expires = np.datetime64(int(datetime.fromisoformat(T0).timestamp()) + (2**31 - 1) * 604800, "s")
    assert got["ExpiresAt"] == f"+{expires}.000Z"


def test_json_nested_100k_deep_is_a_validation_error(emulator: Any, make_group: Any) -> None:
    name = make_group()["FeatureGroupName"]
    body = b'{"Record": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    head = (f"PUT /FeatureGroup/{name} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    answer = raw_http(emulator.url, head + body)
    assert http_status(answer) == 400, answer[:300]
    assert b"ValidationError" in answer
