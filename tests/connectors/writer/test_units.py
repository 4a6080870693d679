"""Unit checks of the writer's parts, each against a value computed here independently."""

from __future__ import annotations

import math
import random
import time
from dataclasses import fields
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pyarrow as pa
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

from featurestream.config.profile import FeatureStoreSpec
from featurestream.connectors.writer.dedup import RECORDS_IN, latest_per_entity
from featurestream.connectors.writer.metrics import merge_partitions, percentile
from featurestream.connectors.writer.rate_limit import TokenBucket
from featurestream.connectors.writer.records import format_event_time, records_from_batch
from featurestream.connectors.writer.redact import redact
from featurestream.connectors.writer.retry import Backoff, Deadline, Outcome, classify
from featurestream.connectors.writer.settings import WriterSettings, worker_tps
from tests.connectors.writer.helpers import events, expected_state, iso


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "PutRecord")


@pytest.mark.parametrize(("exc", "outcome"), [
    (_client_error("ThrottlingException", 400), Outcome.THROTTLED),
    (_client_error("ServiceUnavailable", 503), Outcome.TRANSIENT),
    (_client_error("InternalFailure", 500), Outcome.TRANSIENT),
    (_client_error("SomethingNew", 502), Outcome.TRANSIENT),
    (_client_error("ValidationError", 400), Outcome.REJECTED),
    (_client_error("UnknownOperationException", 404), Outcome.UNSUPPORTED),
    (_client_error("ResourceNotFound", 404), Outcome.FATAL),
    (_client_error("AccessForbidden", 403), Outcome.FATAL),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), Outcome.TRANSIENT),
    (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), Outcome.TRANSIENT),
    (ValueError("bug"), Outcome.FATAL),
])
def test_classification(exc: BaseException, outcome: Outcome) -> None:
    assert classify(exc) is outcome


def test_full_jitter_stays_under_the_exponential_envelope_and_spreads() -> None:
    backoff, rng = Backoff(base_s=0.01, cap_s=0.5), random.Random(1)
    for attempt in range(10):
        ceiling = min(0.5, 0.01 * 2**attempt)
        delays = [backoff.delay(attempt, rng) for _ in range(2000)]
        assert 0 <= min(delays) and max(delays) <= ceiling
        # Uniform on [0, ceiling]: mean ceiling/2, and it uses the whole range.
        assert abs(sum(delays) / len(delays) - ceiling / 2) < 0.05 * ceiling
        assert max(delays) > 0.9 * ceiling and min(delays) < 0.1 * ceiling


def test_deadline_refuses_a_sleep_past_it() -> None:
    from featurestream.connectors.writer.errors import RetriesExhausted

    deadline = Deadline.from_epoch(time.time() + 0.05)
    with pytest.raises(RetriesExhausted):
        deadline.sleep(1.0, "waiting")
    deadline.sleep(0.0, "not waiting")


def test_token_bucket_admits_its_rate() -> None:
    bucket = TokenBucket(rate=400.0, burst=1.0)
    started = time.monotonic()
    waits = [bucket.acquire() for _ in range(81)]
    elapsed = time.monotonic() - started
    # 80 intervals of 2.5 ms after the first token: 0.2 s, never faster.
    assert elapsed >= 0.2
    # Never slower than the rate asks either: no wait beyond one interval. Checked on the planned
    # waits, not the wall clock, which a loaded machine stretches with every oversleep.
    assert waits[0] == 0.0
    assert all(0.0 <= wait <= 0.0025 + 1e-9 for wait in waits)
    assert sum(waits) <= 80 * 0.0025 + 1e-6


def test_token_bucket_reservations_are_evenly_spaced() -> None:
    bucket = TokenBucket(rate=10.0, burst=3.0)
    waits = [bucket.reserve() for _ in range(6)]
    # A burst of 3 is free, then one token every 0.1 s.
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert [round(w, 2) for w in waits[3:]] == pytest.approx([0.1, 0.2, 0.3], abs=0.02)


@pytest.mark.parametrize(("tps", "executors", "slots", "expected"), [
    (10_000, 1, 2, 5_000), (10_000, 4, 4, 625), (10_000, 16, 1, 625), (None, 1, 2, None),
])
def test_worker_budget(tps: float | None, executors: int, slots: int, expected: float | None) -> None:
    # Every slot writing at once with its own bucket sums to exactly the account budget.
    assert worker_tps(tps, executors, slots) == expected
    if tps is not None and expected is not None:
        assert expected * executors * slots == tps


def test_settings_from_the_profile_keep_every_knob() -> None:
    # Every knob off its default, so a knob the conversion dropped or mixed up would show.
    given = {"sink": "sagemaker-connector", "write_mode": "put", "threads_per_partition": 3, "max_attempts": 4,
             "account_tps": 500.0, "executors": 5, "backoff_base_ms": 7, "backoff_cap_ms": 70,
             "batch_timeout_s": 9.0, "call_timeout_s": 2.5, "dlq_path": "s3a://bkt/d", "dlq_max_records_per_batch": 11,
             "runtime_endpoint_url": "http://127.0.0.1:9", "driver_write_max_records": 17}
    defaults = FeatureStoreSpec()
    assert all(getattr(defaults, k) != v for k, v in given.items())
    s = WriterSettings.from_spec(FeatureStoreSpec(**given), "/fallback")
    assert {f.name: getattr(s, f.name) for f in fields(s)} == given
    # The defaults are the spec's, and the caller's DLQ path is the fallback.
    assert WriterSettings.from_spec(FeatureStoreSpec(), "/fallback") == WriterSettings.from_spec(
        FeatureStoreSpec(dlq_path="/fallback"), None)
    assert WriterSettings.from_spec(FeatureStoreSpec(), None).dlq_path is None
    with pytest.raises(ValueError, match="backoff_cap_ms"):
        FeatureStoreSpec(backoff_base_ms=100, backoff_cap_ms=10)


def test_driver_write_limit_defaults_to_where_spark_runs() -> None:
    # Unset: 5,000 records on a cluster; 50,000 with a local master, where the executors' Python
    # workers share the driver's cores (bench-stream's dense batches of 10k records then take the
    # collected path). A value the profile gives wins on both.
    assert WriterSettings.from_spec(FeatureStoreSpec(), None).driver_write_max_records == 5_000
    assert WriterSettings.from_spec(FeatureStoreSpec(), None, local_master=True).driver_write_max_records == 50_000
    for given in (0, 17):
        for local in (False, True):
            settings = WriterSettings.from_spec(FeatureStoreSpec(driver_write_max_records=given), None,
                                                local_master=local)
            assert settings.driver_write_max_records == given


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    random.Random(2).shuffle(values)
    assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (50.0, 99.0, 100.0)
    assert percentile([], 50) is None


def test_merge_sums_counters_and_pools_latencies() -> None:
    a = {"records_in": 3, "records": 2, "written": 2, "dlq": 0, "calls": 1, "retries": 1, "throttles": 1,
         "fallbacks": 0, "rate_wait_s": 0.5, "latencies_ms": [1.0]}
    b = dict(a, dlq=1, latencies_ms=[2.0, 3.0])
    total = merge_partitions([a, b])
    got = (total["records_in"], total["dlq"], total["partitions"], sorted(total["latencies_ms"]))
    assert got == (6, 1, 2, [1, 2, 3])


def test_records_render_values_as_sagemaker_expects() -> None:
    ts = datetime(2026, 11, 26, 10, 30, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    batch = pa.record_batch({
        "id": pa.array(["a", "b"]), "ts": pa.array([ts, ts], pa.timestamp("us", tz="UTC")),
        "n": pa.array([7, None], pa.int64()), "x": pa.array([0.1, math.nan]), "flag": pa.array([True, False]),
    })
    recs = list(records_from_batch(batch, "id", "ts", ["n", "x", "flag"]))
    assert recs[0].as_dict() == {"id": "a", "ts": "2026-11-26T08:30:05.123Z", "n": "7", "x": "0.1", "flag": "1"}
    # Missing values (None, NaN) leave the feature out rather than writing a placeholder.
    assert recs[1].as_dict() == {"id": "b", "ts": "2026-11-26T08:30:05.123Z", "flag": "0"}
    assert format_event_time(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000Z"


def test_records_built_in_arrow_match_a_value_by_value_rendering() -> None:
    """The Arrow-built record JSON is, to the character, what rendering each value on its own gives:
    ints as str, floats as repr (NaN, inf and nulls left out), booleans 1/0, timestamps in UTC with
    milliseconds floored (any zone, before 1970 too; a year below 1000 takes the Python path),
    strings JSON-escaped."""
    import json

    rng = random.Random(5)
    tricky = ['a"b', "back\\slash", "line\nbreak", "üñí 漢字 \u2028", "\x01", ""]
    floats = [math.nan, math.inf, -math.inf, 0.0, -0.0, 1.0, 1e16, 5e-324, 1e-7, None]
    n = 600
    ids = [None if i == 7 else f"{rng.choice(tricky)}-{i}" for i in range(n)]
    micros = [rng.randint(-30_610_224_000 * 10**6, 253_402_300_799 * 10**6) if i % 50 else None for i in range(n)]
    ints = [rng.randint(-2**63, 2**63 - 1) if i % 9 else None for i in range(n)]
    xs = [rng.choice(floats) if i % 4 == 0 else rng.random() * 10.0 ** rng.randint(-30, 30) for i in range(n)]
    flags = [rng.choice([True, False, None]) for _ in range(n)]
    texts = [rng.choice([*tricky, None]) for _ in range(n)]
    batch = pa.record_batch({
        "id": pa.array(ids), "ts": pa.array(micros, pa.timestamp("us", tz="America/New_York")),
        "n": pa.array(ints, pa.int64()), "x": pa.array(xs, pa.float64()), "f": pa.array(xs, pa.float32()),
        "b": pa.array(flags), "s": pa.array(texts),
    })
    epoch = datetime(1970, 1, 1, tzinfo=UTC)

    def stamp(us: int | None) -> str | None:
        if us is None:
            return None
        at = epoch + timedelta(microseconds=us)
        return f"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}:{at.minute:02d}:{at.second:02d}." \
               f"{at.microsecond // 1000:03d}Z"

    def number(v: float | None) -> str | None:
        return None if v is None or not math.isfinite(v) else repr(v)

    columns = {
        "id": ids, "ts": [stamp(us) for us in micros], "n": [None if v is None else str(v) for v in ints],
        "x": [number(v) for v in xs], "f": [number(v) for v in pa.array(xs, pa.float32()).to_pylist()],
        "b": [None if v is None else "1" if v else "0" for v in flags], "s": texts,
    }
    expected = [
        (columns["id"][i], columns["ts"][i], json.dumps(
            [{"FeatureName": k, "ValueAsString": v[i]} for k, v in columns.items() if v[i] is not None],
            separators=(",", ":"), ensure_ascii=False))
        for i in range(n)
    ]
    got = records_from_batch(batch, "id", "ts", ["n", "x", "f", "b", "s"])
    assert [(r.identifier, r.event_time, r.record_json) for r in got] == expected
    old = datetime(999, 1, 2, 3, 4, 5, 6789)
    early = pa.record_batch({"id": pa.array(["a"]), "ts": pa.array([old])})
    assert records_from_batch(early, "id", "ts", [])[0].event_time == format_event_time(old)


def test_redaction_hides_values_and_signed_header_parts() -> None:
    line = ("headers={'Authorization': b'AWS4-HMAC-SHA256 Credential=AKIAABCDEFGHIJKLMNOP/20261126/us-east-1/"
            "sagemaker/aws4_request, SignedHeaders=host, Signature=0123abcd', 'X-Amz-Security-Token': b'tok'} "
            "k=s3cr3tvalue!")
    cleaned = redact(line, {"s3cr3tvalue!"})
    for secret in ("AKIAABCDEFGHIJKLMNOP", "0123abcd", "s3cr3tvalue!", "'tok'"):
        assert secret not in cleaned
    assert "Credential=***" in cleaned and "us-east-1" in cleaned


def test_latest_per_entity_matches_an_independent_pick(spark) -> None:
    rows = events(50, per_entity=4, seed=12)
    frame = spark.createDataFrame([(r["id"], r["ts"], r["n"], r["x"], r["s"]) for r in rows],
                                  "id string, ts timestamp, n long, x double, s string")
    got = latest_per_entity(frame, "id", "ts", ["n", "x", "s"]).collect()
    picked = {r["id"]: {"id": r["id"], "ts": iso(r["ts"].replace(tzinfo=UTC)), "n": str(r["n"]), "x": repr(r["x"]),
                        "s": r["s"]} for r in got}
    assert picked == expected_state(rows)
    assert sum(r[RECORDS_IN] for r in got) == len(rows)


def test_batch_write_body_is_what_botocore_would_send() -> None:
    """The writer's hand-built BatchWriteRecord body parses to the same JSON as botocore's own
    serialisation of the same entries (quotes, backslashes, control and non-ASCII characters)."""
    import json

    import boto3

    from featurestream.connectors.writer.client import prepare
    from featurestream.connectors.writer.partition_writer import PartitionWriter
    from featurestream.connectors.writer.plan import WritePlan
    from featurestream.connectors.writer.target import OnlineStoreTarget

    tricky = ['a"b', "back\\slash", "line\nbreak\ttab", "üñí 漢字 \u2028", "\x01ctl", ""]
    batch = pa.record_batch({
        "id": pa.array([f"id-{i}" for i in range(len(tricky))]),
        "ts": pa.array(["2026-11-26T09:00:00.000Z"] * len(tricky)),
        "s": pa.array(tricky), "n": pa.array(list(range(len(tricky))), pa.int64()),
    })
    records = records_from_batch(batch, "id", "ts", ["s", "n"])
    expected_values = [[{"FeatureName": "id", "ValueAsString": f"id-{i}"},
                        {"FeatureName": "ts", "ValueAsString": "2026-11-26T09:00:00.000Z"},
                        {"FeatureName": "s", "ValueAsString": text}, {"FeatureName": "n", "ValueAsString": str(i)}]
                       for i, text in enumerate(tricky)]
    assert [r.values for r in records] == expected_values

    client = boto3.client("sagemaker-featurestore-runtime", region_name="us-east-1",
                          endpoint_url="http://127.0.0.1:9", aws_access_key_id="k", aws_secret_access_key="s")
    entries = [{"FeatureGroupName": "fg-\"q\"", "Record": values} for values in expected_values]
    model = client.meta.service_model.operation_model("BatchWriteRecord")
    theirs = client._serializer.serialize_to_request({"Entries": entries}, model)["body"]

    sent: list[bytes] = []

    def capture(request: Any, **_: Any) -> None:
        sent.append(request.body)
        raise RuntimeError("captured")  # no network: stop after signing

    target = OnlineStoreTarget('fg-"q"', "id", "ts", ("s", "n"), "us-east-1")
    store = FeatureStoreSpec(write_mode="batch", threads_per_partition=1, max_attempts=1, backoff_base_ms=10,
                             backoff_cap_ms=10, call_timeout_s=1)
    plan = WritePlan(target, WriterSettings.from_spec(store, None), endpoint_url="http://127.0.0.1:9",
                     deadline_epoch=time.time() + 30, worker_tps=None)
    from botocore.config import Config

    fast = boto3.client("sagemaker-featurestore-runtime", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
                        aws_access_key_id="k", aws_secret_access_key="s", config=Config(parameter_validation=False))
    assert prepare(fast)
    fast.meta.events.register("before-send.sagemaker-featurestore-runtime.BatchWriteRecord", capture)
    writer = PartitionWriter(plan, fast)
    with pytest.raises(RuntimeError, match="captured"):
        writer._send_batch(records)
    assert json.loads(sent[0]) == json.loads(theirs)


def test_the_client_names_itself_without_botocore_rebuilding_its_user_agent() -> None:
    """botocore's default User-Agent is rebuilt from ~40 parts twice per call; the writer's client
    gives its own, made once, naming featurestream and the SDK."""
    import boto3
    import botocore

    from featurestream.connectors.writer.client import runtime_client

    client = runtime_client("us-east-1", "http://127.0.0.1:9", 3, 1.5)
    agent = client._user_agent_creator.to_string()
    assert agent.startswith("featurestream/") and f"Boto3/{boto3.__version__}" in agent
    assert f"Botocore#{botocore.__version__}" in agent
