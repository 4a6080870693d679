"""Parsing and DLQ reasons, record by record, against expectations written out by hand.

Every class of bad input gets its exact reason; valid events (non-ASCII text, old dates, events a
little ahead of their record's timestamp) come through unchanged; a payload that is not UTF-8 is
kept in the DLQ byte for byte (base64). No services: raw rows are built in memory in the shape of
the Kafka source (value, topic, partition, offset, timestamp).
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from featurestream.config import load_feature_group
from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.engine.parsing import REASON, invalid_events, parse_events, valid_events
from featurestream.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
RECORD_TIME = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
NO_TIMESTAMP = datetime.fromtimestamp(-0.001, UTC)  # what Kafka reports for a record without one

MALFORMED = "malformed JSON or a field of the wrong type"
BAD_UTF8 = "invalid UTF-8: the payload is not UTF-8 text (kept as base64)"
NON_FINITE = "not a finite number: amount is NaN or Infinity"
FUTURE_1D = "event time event_time too far in the future: more than 1d after the record's timestamp"


def _spec(tmp_path: Path, **event_time: Any) -> FeatureGroupSpec:
    data = yaml.safe_load((ROOT / "conf/feature_groups/card_activity.yaml").read_text())
    data["event_time"].update(event_time)
    path = tmp_path / "cards.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_feature_group(path)


def _event(marker: str, when: datetime | str = RECORD_TIME, **fields: Any) -> dict[str, Any]:
    stamp = when if isinstance(when, str) else when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"transaction_id": marker, "card_id": f"card-{marker}", "merchant_id": "m-1", "amount": 10.0,
            "currency": "EUR", "event_time": stamp, **fields}


def _parse(spark: Any, spec: FeatureGroupSpec, values: list[tuple[bytes | None, datetime]]) -> tuple[Any, Any]:
    rows = [(value, "payments", 0, offset, ts) for offset, (value, ts) in enumerate(values)]
    raw = spark.createDataFrame(rows, "value binary, topic string, partition int, offset long, timestamp timestamp")
    parsed = parse_events(raw, spec).cache()
    return parsed, invalid_events(parsed)


def _reasons(parsed: Any) -> dict[int, str | None]:
    return {int(r["offset"]): r[REASON] for r in parsed.select("offset", REASON).collect()}


def test_every_class_gets_its_reason_and_valid_events_are_untouched(spark: Any, tmp_path: Path) -> None:
    spec = _spec(tmp_path)
    body = lambda event: json.dumps(event).encode()  # noqa: E731
    ahead_23h = RECORD_TIME + timedelta(hours=23)
    cases: list[tuple[bytes | None, str | None]] = [
        (body(_event("ok")), None),
        # Non-ASCII but valid UTF-8, and an emoji (4 bytes).
        (json.dumps(_event("utf", merchant_id="café ☕ 🍰"), ensure_ascii=False).encode(), None),
        # Old events are the engine's business (late sink), not parsing's.
        (body(_event("old", "2001-01-01T00:00:00.000Z")), None),
        # A little ahead of the record's timestamp (a producer clock that runs fast): accepted.
        (body(_event("soon", ahead_23h)), None),
        (None, "empty message"),
        (b'{"card_id": "x", "amount": 1.0', MALFORMED),
        (body(_event("type", amount="lots")), MALFORMED),
        (body({k: v for k, v in _event("nokey").items() if k != "card_id"}), "missing entity key card_id"),
        (body({k: v for k, v in _event("notime").items() if k != "event_time"}),
         "missing or unparsable event time event_time"),
        (b"\xff\xfe" + body(_event("bom")), BAD_UTF8),
        # Bad bytes inside a string value: Spark alone would accept the event with U+FFFD in it.
        (body(_event("inner")).replace(b"m-1", b"m-\xc3\x28"), BAD_UTF8),
        (body(_event("nan")).replace(b'"amount": 10.0', b'"amount": NaN'), NON_FINITE),
        (body(_event("inf")).replace(b'"amount": 10.0', b'"amount": Infinity'), NON_FINITE),
        (body(_event("minf")).replace(b'"amount": 10.0', b'"amount": -Infinity'), NON_FINITE),
        (body(_event("qnan", amount="NaN")), NON_FINITE),
        (body(_event("future", "2099-01-01T00:00:00.000Z")), FUTURE_1D),
        (body(_event("tomorrow", RECORD_TIME + timedelta(hours=25))), FUTURE_1D),
    ]
    parsed, dlq = _parse(spark, spec, [(value, RECORD_TIME) for value, _ in cases])
    assert _reasons(parsed) == {offset: reason for offset, (_, reason) in enumerate(cases)}

    valid = sorted(valid_events(parsed, spec).collect(), key=lambda r: r["transaction_id"])
    assert [(r["transaction_id"], r["merchant_id"], r["event_time"].replace(tzinfo=UTC)) for r in valid] == [
        ("ok", "m-1", RECORD_TIME),
        ("old", "m-1", datetime(2001, 1, 1, tzinfo=UTC)),
        ("soon", "m-1", ahead_23h),
        ("utf", "café ☕ 🍰", RECORD_TIME),
    ]
    rows = {int(r["offset"]): r for r in dlq.collect()}
    assert len(rows) + len(valid) == len(cases)
    for offset, (value, reason) in enumerate(cases):
        if reason is None:
            continue
        row = rows[offset]
        assert row["reason"] == reason
        if value is None:
            assert row["payload"] is None
        elif reason == BAD_UTF8:
            # Lossless: base64 of exactly the bytes that came.
            assert row["payload_encoding"] == "base64"
            assert base64.b64decode(row["payload"]) == value
        else:
            assert row["payload_encoding"] == "utf-8"
            assert row["payload"].encode() == value


def test_future_bound_is_configurable_and_falls_back_to_processing_time(spark: Any, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    ahead_2h = json.dumps(_event("2h", RECORD_TIME + timedelta(hours=2))).encode()
    tight = _spec(tmp_path, max_future="1h")
    parsed, _ = _parse(spark, tight, [(ahead_2h, RECORD_TIME)])
    assert _reasons(parsed) == {0: "event time event_time too far in the future: more than 1h after the record's "
                                   "timestamp"}
    unbounded = _spec(tmp_path, max_future=None)
    parsed, _ = _parse(spark, unbounded, [(json.dumps(_event("far", "2099-01-01T00:00:00.000Z")).encode(),
                                             RECORD_TIME)])
    assert _reasons(parsed) == {0: None}
    # A record without a timestamp (-1 ms from Kafka): the micro-batch's processing time is the reference.
    default = _spec(tmp_path)
    body = json.dumps(_event("now", now)).encode()
    later = json.dumps(_event("later", now + timedelta(days=2))).encode()
    parsed, _ = _parse(spark, default, [(body, NO_TIMESTAMP), (later, NO_TIMESTAMP)])
    assert _reasons(parsed) == {0: None, 1: FUTURE_1D}


@pytest.mark.parametrize("bad", ["soon", "0s", "-1d"])
def test_a_bad_future_bound_is_a_config_error(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match=r"event_time\.max_future"):
        _spec(tmp_path, max_future=bad)


def test_a_string_over_its_limit_goes_to_the_dlq_naming_the_field(spark: Any, tmp_path: Path) -> None:
    """A value the online record could never hold is refused before it reaches the engine's state."""
    spec = _spec(tmp_path)
    # card_activity: no string feature, so every string input may take the record's 350 KB less
    # the identifier's 2 KB and 128 bytes for each of its 2 features and the event time.
    share = 350 * 1024 - 2 * 1024 - 3 * 128
    assert spec.string_limits() == {"transaction_id": share, "card_id": 2048, "merchant_id": share,
                                    "currency": share}
    body = lambda event: json.dumps(event, ensure_ascii=False).encode()  # noqa: E731
    cases = [
        (body(_event("fits", merchant_id="m" * share)), None),
        (body(_event("big", merchant_id="m" * (share + 1))), f"value too large: merchant_id is over {share} bytes "
                                                            "(source.max_string_bytes)"),
        # Bytes, not characters: 2-byte characters reach the limit at half the length.
        (body(_event("wide", merchant_id="é" * (share // 2 + 1))), f"value too large: merchant_id is over {share} "
                                                                   "bytes (source.max_string_bytes)"),
        (body({**_event("key"), "card_id": "c" * 2049}), "value too large: card_id is over 2048 bytes "
                                                         "(source.max_string_bytes)"),
    ]
    parsed, _ = _parse(spark, spec, [(value, RECORD_TIME) for value, _ in cases])
    assert _reasons(parsed) == {offset: reason for offset, (_, reason) in enumerate(cases)}

    data = yaml.safe_load((ROOT / "conf/feature_groups/card_activity.yaml").read_text())
    data["source"]["max_string_bytes"] = {"currency": 3}
    path = tmp_path / "tight.yaml"
    path.write_text(yaml.safe_dump(data))
    tight = load_feature_group(path)
    parsed, _ = _parse(spark, tight, [(body(_event("eur")), RECORD_TIME), (body(_event("x", currency="EURO")),
                                                                           RECORD_TIME)])
    assert _reasons(parsed) == {0: None, 1: "value too large: currency is over 3 bytes (source.max_string_bytes)"}


@pytest.mark.parametrize(("limits", "field"), [
    ({"amount": 10}, "not a string column"),
    ({"merchant_id": 0}, "greater than or equal to 1"),
    ({"merchant_id": 350 * 1024 + 1}, "less than or equal to 358400"),
    ({"card_id": 4096}, "more than the 2048 bytes a record identifier may have"),
])
def test_a_bad_string_limit_is_a_config_error(tmp_path: Path, limits: dict[str, int], field: str) -> None:
    data = yaml.safe_load((ROOT / "conf/feature_groups/card_activity.yaml").read_text())
    data["source"]["max_string_bytes"] = limits
    path = tmp_path / "limits.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=field):
        load_feature_group(path)


def test_the_jar_parses_every_payload_as_spark_from_json_does(spark: Any, tmp_path: Path) -> None:
    """`FromJson` (the parse step's from_json, see parsing._decode_json) against Spark's own `from_json`
    on the same column, payload by payload: the same struct (every field and the corrupt-record column)."""
    from pyspark.sql import Column
    from pyspark.sql import functions as F

    from featurestream.engine.parsing import CORRUPT, event_schema
    from featurestream.io.jvm import java_class

    spec = _spec(tmp_path)
    good = _event("ok")
    body = lambda event: json.dumps(event).encode()  # noqa: E731
    stamps: list[Any] = [
        "2026-11-20T08:00:00Z", "2026-11-20T08:00:00.123Z", "2026-11-20T08:00:00.123456789Z", "2026-11-20 08:00:00",
        "2026-11-20T08:00:00+02:00", "2026-11-20T08:00:00.5-07:30", "2026-11-20", "2026-11", "2026", "20261120",
        "2026-11-20T08:00", "2026-11-20T25:00:00Z", "2026-02-30T00:00:00Z", " 2026-11-20T08:00:00Z ", "T08:00:00",
        "2026-11-20T08:00:00 UTC", "2026-11-20T08:00:00[Europe/Paris]", "+12026-11-20T08:00:00Z", "1700000000",
        "", "x", 1700000000, -1, 1.5, 1e3, True, None, [], {}, 2**70,
    ]
    cases: list[bytes | None] = [body({**good, "event_time": stamp}) for stamp in stamps]
    cases += [
        None, b"", b" ", b"null", b"[]", b"{}", b"[" + body(good) + b"]", body(good) + b" trailing",
        body(good) + b"\n" + body(good), b"\xef\xbb\xbf" + body(good), b"\x00" + body(good), b"\n\t " + body(good),
        b'{"card_id": "x", "amount": 1.0', body({**good, "amount": "12.5"}), body({**good, "amount": "lots"}),
        body({**good, "amount": 10}), body({**good, "amount": 1e400}), body({**good, "card_id": 42}),
        body({**good, "card_id": {"a": [1, 2]}}), body({**good, "card_id": None}), body({**good, "extra": [1, {}]}),
        body({**good, "CARD_ID": "upper"}), b'{"card_id": "a", "card_id": "b", "amount": 1.0}',
        b'{"card_id": "\\ud800", "amount": 1.0}', b'{"card_id": "\\u00e9\\n\\"", "amount": 1.0}',
        b"{'card_id': 'single', 'amount': 1.0}", b'{card_id: "bare", "amount": 1.0}',
        b'{"card_id": "x", "amount": NaN}', b'{"card_id": "x", "amount": -Infinity}', b'{"card_id": "x", "amount": 01}',
        b'{"card_id": "x", /* c */ "amount": 1.0}', b'{"card_id": "x",}', b'{"card_id": "tab\there"}',
        json.dumps({**good, "merchant_id": "café ☕ 🍰"}, ensure_ascii=False).encode(),
        body({**good, "merchant_id": "m" * 70_000}), b"\xff\xfe" + body(good),
        body(good).replace(b"m-1", b"m-\xc3\x28"), body(good).replace(b"m-1", b"m-\xed\xa0\x80"),
        body(good).replace(b"m-1", b"m-\xf0\x9f"),
    ]
    raw = spark.createDataFrame([(value,) for value in cases], "value binary")
    spark_parse = F.from_json(F.col("value").cast("string"), event_schema(spec),
                              {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT})
    ours = Column(java_class(spark, "io.featurestream.tiles.FromJson").wrap(spark_parse._jc))
    both = raw.select(F.monotonically_increasing_id().alias("i"), spark_parse.alias("spark"), ours.alias("ours"))
    # As JSON text (some of these timestamps are beyond Python's datetime), and as Spark compares them.
    rows = both.select("i", F.to_json("spark").alias("spark"), F.to_json("ours").alias("ours"),
                       F.col("spark").eqNullSafe(F.col("ours")).alias("same"),
                       F.col(f"spark.{CORRUPT}").isNull().alias("parsed")).orderBy("i").collect()
    assert len(rows) == len(cases)
    differing = [(cases[n], row["spark"], row["ours"]) for n, row in enumerate(rows)
                 if not row["same"] or row["spark"] != row["ours"]]
    assert differing == []
    # The cases cover both outcomes: parsed events and corrupt records.
    assert {row["parsed"] for row in rows} == {True, False}
