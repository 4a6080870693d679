"""Fuzzing the emulator's HTTP API (issue 19): no client error is ever answered with a 5xx,
the server stays up, and every acknowledged write stays intact.

Hypothesis draws valid requests and mutations of them (one value replaced, dropped or added
anywhere in the body) for both planes, and raw HTTP with broken framing. Runs are
derandomized (the same examples every run) and bounded: about a minute for the whole module.
"""

from __future__ import annotations

import http.client
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurestream.dev.feature_store import EmulatorProcess
from tests.dev.feature_store import fuzz_strategies as fs
from tests.dev.feature_store.helpers import as_dict, http_status, raw_http
from tests.emulators import running_emulator

pytestmark = pytest.mark.feature_store

FUZZ = settings(
    derandomize=True, database=None, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)
GROUPS = {
    "fz": [("id", "String"), ("ts", "String"), ("n", "Integral"), ("x", "Fractional"), ("s", "String")],
    "fz-frac": [("id", "String"), ("et", "Fractional"), ("n", "Integral"), ("x", "Fractional"), ("s", "String")],
}
JSON_11 = "application/x-amz-json-1.1"


class Client:
    """One keep-alive connection; (status, parsed JSON or raw bytes) per call."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        self.calls = 0
        self.statuses: Counter[int] = Counter()

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        self.calls += 1
        try:
            self.conn.request(method, path, body=data, headers=headers or {"Content-Type": "application/json"})
            resp = self.conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise
        self.statuses[resp.status] += 1
        try:
            return resp.status, json.loads(raw) if raw else {}
        except ValueError:
            return resp.status, raw

    def control(self, op: str, body: Any) -> tuple[int, Any]:
        return self.call("POST", "/", body, {"X-Amz-Target": f"SageMaker.{op}", "Content-Type": JSON_11})


def _query(params: dict[str, Any]) -> str:
    # Lone surrogates go out percent-encoded as the bytes a careless client would send.
    return urlencode(params, doseq=True, quote_via=lambda s, safe, enc, err: quote(s, safe, "utf-8", "surrogatepass"))


def _create_body(name: str, features: list[tuple[str, str]], event_time: str) -> dict[str, Any]:
    return {
        "FeatureGroupName": name, "RecordIdentifierFeatureName": "id", "EventTimeFeatureName": event_time,
        "FeatureDefinitions": [{"FeatureName": n, "FeatureType": t} for n, t in features],
        "OnlineStoreConfig": {"EnableOnlineStore": True},
        "OfflineStoreConfig": {"S3StorageConfig": {"S3Uri": "s3://fuzz-bucket/fz"}},
    }


@pytest.fixture(scope="module")
def fuzz_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with running_emulator(tmp_path_factory.mktemp("fuzz"), request_timeout_s=2) as emu:
        client = Client(emu.url)
        # The runtime fuzz writes to GROUPS; the control-plane fuzz updates its own group.
        for name, features in [*GROUPS.items(), ("fz-ctl", GROUPS["fz"])]:
            status, body = client.control("CreateFeatureGroup", _create_body(name, features, features[1][0]))
            assert status == 200, body
        yield emu


def _no_server_error(status: int, body: Any, what: str) -> None:
    assert status < 500, f"{what} -> {status} {body!r:.300}"
    if status >= 400:
        assert isinstance(body, dict) and body.get("__type"), f"{what} -> {status} without an error shape"


def test_fuzz_runtime_requests(fuzz_emulator: EmulatorProcess) -> None:
    client = Client(fuzz_emulator.url)
    acked: dict[tuple[str, str], dict[str, str]] = {}
    prefix = f"ack-{uuid.uuid4().hex[:8]}-"

    def valid_put(data: st.DataObject) -> tuple[str, str, dict[str, Any], list[tuple[str, dict[str, str]]]]:
        group = data.draw(st.sampled_from(sorted(GROUPS)))
        values = data.draw(fs.valid_values(fractional_time=group == "fz-frac"))
        values["id"] = prefix + values["id"]
        return "PUT", f"/FeatureGroup/{group}", {"Record": fs.feature_values(values)}, [(group, values)]

    def valid_batch(data: st.DataObject) -> tuple[str, str, dict[str, Any], list[tuple[str, dict[str, str]]]]:
        writes = [valid_put(data)[3][0] for _ in range(data.draw(st.integers(1, 5)))]
        entries = [{"FeatureGroupName": g, "Record": fs.feature_values(v)} for g, v in writes]
        return "POST", "/BatchWriteRecord", {"Entries": entries}, writes

    def other(data: st.DataObject) -> tuple[str, str, Any, list[tuple[str, dict[str, str]]]]:
        group = data.draw(st.sampled_from(sorted(GROUPS)))
        rid = fs.fresh_id("other-")
        kind = data.draw(st.sampled_from(["update", "list", "batch_get", "get", "delete"]))
        if kind == "update":
            body: Any = {"RecordIdentifierValueAsString": rid, "Features": [{"FeatureName": "s", "ValueAsString": "u"}],
                         "TtlDuration": data.draw(fs.ttl)}
            return "POST", f"/FeatureGroup/{group}/Record", body, []
        if kind == "list":
            return "POST", f"/FeatureGroup/{group}/ListRecords", {"MaxResults": data.draw(st.integers(1, 100))}, []
        if kind == "batch_get":
            body = {"Identifiers": [{"FeatureGroupName": group, "RecordIdentifiersValueAsString": [rid],
                                     "FeatureNames": ["id", "s"]}], "ExpirationTimeResponse": "Enabled"}
            return "POST", "/BatchGetRecord", body, []
        params = {"RecordIdentifierValueAsString": data.draw(fs.any_text | fs.special_values.map(str)),
                  "EventTime": data.draw(fs.any_text), "FeatureName": data.draw(st.lists(fs.any_text, max_size=2)),
                  "ExpirationTimeResponse": "Enabled", "DeletionMode": data.draw(fs.any_text)}
        return ("GET" if kind == "get" else "DELETE"), f"/FeatureGroup/{group}?{_query(params)}", None, []

    @settings(FUZZ, max_examples=2000)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        method, path, body, writes = data.draw(st.sampled_from([valid_put, valid_batch, other]))(data)
        mutate = body is not None and data.draw(st.booleans())
        if mutate:
            body = data.draw(fs.mutated(body))
        status, answer = client.call(method, path, body)
        _no_server_error(status, answer, f"{method} {path}")
        if writes and not mutate:
            assert status == 200, f"valid {method} {path} -> {status} {answer!r:.300}"
            if path == "/BatchWriteRecord":
                assert answer == {"Errors": [], "UnprocessedEntries": []}, answer
            acked.update({(g, v["id"]): v for g, v in writes})
            group, values = writes[-1]  # read it back at once; all of them again at the end
            query = _query({"RecordIdentifierValueAsString": values["id"]})
            status, got = client.call("GET", f"/FeatureGroup/{group}?{query}")
            assert status == 200 and as_dict(got["Record"]) == values, got

    run()
    print(f"\nruntime fuzz: {client.calls} calls, statuses {dict(client.statuses)}, {len(acked)} writes acknowledged")
    _all_intact(client, acked, fuzz_emulator)


def _all_intact(client: Client, acked: dict[tuple[str, str], dict[str, str]], emu: EmulatorProcess) -> None:
    """Every acknowledged write online as written, and offline (no row quarantined or blocked)."""
    by_group: dict[str, list[str]] = {}
    for group, rid in acked:
        by_group.setdefault(group, []).append(rid)
    for group, ids in by_group.items():
        for start in range(0, len(ids), 100):
            chunk = ids[start:start + 100]
            status, got = client.call("POST", "/BatchGetRecord", {"Identifiers": [
                {"FeatureGroupName": group, "RecordIdentifiersValueAsString": chunk}]})
            assert status == 200
            found = {r["RecordIdentifierValueAsString"]: as_dict(r["Record"]) for r in got["Records"]}
            assert found == {rid: acked[(group, rid)] for rid in chunk}
    emu.flush()
    health = emu.health()
    assert health["offline_quarantined_rows"] == 0, health["offline_quarantine"]
    assert health["offline_blocked"] == {} and health["offline_queued_rows"] == 0
    root = Path(emu.options["offline_local_dir"])
    offline_ids = {row["id"] for path in root.rglob("*.parquet") for row in _rows(path)}
    assert {rid for _, rid in acked} <= offline_ids


def _rows(path: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return list(pq.ParquetFile(path).read(columns=["id"]).to_pylist())


def test_fuzz_control_plane(fuzz_emulator: EmulatorProcess) -> None:
    client = Client(fuzz_emulator.url)
    features = GROUPS["fz"]

    def request(data: st.DataObject) -> tuple[str, dict[str, Any]]:
        op = data.draw(st.sampled_from(["CreateFeatureGroup", "UpdateFeatureGroup", "DescribeFeatureGroup",
                                         "ListFeatureGroups", "DescribeFeatureMetadata", "DeleteFeatureGroup"]))
        if op == "CreateFeatureGroup":
            body = _create_body(fs.fresh_id("fzc-"), features, "ts")
            body["OnlineStoreConfig"]["TtlDuration"] = data.draw(fs.ttl)
            body["ThroughputConfig"] = {"ThroughputMode": "OnDemand"}
            body["Description"] = "fuzz"
            return op, body
        if op == "UpdateFeatureGroup":
            return op, {"FeatureGroupName": "fz-ctl", "ThroughputConfig": {"ThroughputMode": "OnDemand"},
                        "OnlineStoreConfig": {"TtlDuration": data.draw(fs.ttl)}}
        if op == "ListFeatureGroups":
            return op, {"MaxResults": 5, "SortBy": "Name", "SortOrder": "Ascending", "NameContains": "fz",
                        "NextToken": "eyJvIjogMX0="}
        if op == "DeleteFeatureGroup":
            name = fs.fresh_id("fzd-")
            status, answer = client.control("CreateFeatureGroup", _create_body(name, features, "ts"))
            assert status == 200, answer
            return op, {"FeatureGroupName": name}
        body = {"FeatureGroupName": "fz-ctl"}
        if op == "DescribeFeatureMetadata":
            body["FeatureName"] = "n"
        return op, body

    @settings(FUZZ, max_examples=1000)
    @given(st.data())
    def run(data: st.DataObject) -> None:
        op, body = request(data)
        mutate = data.draw(st.booleans())
        status, answer = client.control(op, data.draw(fs.mutated(body)) if mutate else body)
        _no_server_error(status, answer, op)
        if not mutate:
            assert status == 200, f"valid {op} -> {status} {answer!r:.300}"

    run()
    print(f"\ncontrol-plane fuzz: {client.calls} calls, statuses {dict(client.statuses)}")
    for name in GROUPS:  # the groups the runtime fuzz writes to are still whole
        status, described = client.control("DescribeFeatureGroup", {"FeatureGroupName": name})
        assert status == 200 and [f["FeatureName"] for f in described["FeatureDefinitions"]] == [
            n for n, _ in GROUPS[name]]


_METHODS = st.sampled_from(["GET", "PUT", "POST", "DELETE", "PATCH", "G ET", "", "\x00", "GET /"])
_TARGETS = st.sampled_from(["/FeatureGroup/fz", "/BatchWriteRecord", "/", "//[", "/%ff%fe", "*", "/health?x=%",
                            "/FeatureGroup/fz/Record", "/FeatureGroup/" + "a" * 5000, "http://[::1"])
_HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)


@st.composite
def raw_requests(draw: st.DrawFn) -> bytes:
    """A request whose head always ends (so no answer waits for a timeout) and whose framing may lie."""
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2", "HTTP/1.1 x"]))
    line = f"{draw(_METHODS)} {draw(_TARGETS)} {version}"
    headers = [f"{draw(st.from_regex(r'[A-Za-z-]{1,12}', fullmatch=True))}: {draw(_HEADER_TEXT)}"
               for _ in range(draw(st.integers(0, 4)))]
    if draw(st.booleans()):
        headers.append(f"X-Amz-Target: SageMaker.{draw(st.sampled_from(['CreateFeatureGroup', 'Nope', '']))}")
    body = draw(st.binary(max_size=200) | st.just(b'{"Record": []}') | st.just(b"[" * 5000))
    framing = draw(st.sampled_from(["length", "chunked", "bad-chunk", "both", "negative", "none"]))
    if framing == "length":
        headers.append(f"Content-Length: {len(body)}")
    elif framing == "chunked":
        headers.append("Transfer-Encoding: chunked")
        body = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    elif framing == "bad-chunk":
        headers.append("Transfer-Encoding: chunked")
        body = draw(st.sampled_from([b"zz\r\n", b"-1\r\n", b"1" * 40 + b"\r\n", b"2\r\nabcdef\r\n"])) + body
    elif framing == "both":
        headers += [f"Content-Length: {len(body)}", "Transfer-Encoding: chunked"]
    elif framing == "negative":
        headers.append("Content-Length: -5")
    head = "\r\n".join([line, "Host: localhost", *headers, "Connection: close"]) + "\r\n\r\n"
    return head.encode("latin-1") + body


def test_fuzz_raw_http(fuzz_emulator: EmulatorProcess) -> None:
    @settings(FUZZ, max_examples=600)
    @given(raw_requests())
    def run(payload: bytes) -> None:
        try:
            answer = raw_http(fuzz_emulator.url, payload, timeout=10)
        except TimeoutError:
            pytest.fail(f"no answer within 10 s to {payload[:200]!r}")
        status = http_status(answer)
        assert status is not None and status < 500, f"{payload[:200]!r} -> {answer[:200]!r}"

    run()
    assert fuzz_emulator.healthy()


def test_fuzz_left_the_server_healthy(fuzz_emulator: EmulatorProcess) -> None:
    health = fuzz_emulator.health()
    assert health["status"] == "ok" and health["threads"] <= 64
    log = fuzz_emulator.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]

