"""Secret values never reach a log line; OpenLineage events go to a file or over real HTTP."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from featurestream.config.profile import LineageSpec
from featurestream.ops import lineage as ol
from featurestream.ops.secrets import install_redactor, redact, register_secret


def test_registered_secret_is_masked_in_messages_args_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    secret = "Sup3r-Secret-Value-91"
    jaas = 'org.apache.kafka.common.security.plain.PlainLoginModule required username="svc" password="pl41n-pw";'
    handler = logging.StreamHandler()
    logging.getLogger().addHandler(handler)
    try:
        register_secret(secret)
        register_secret(jaas)
        logger = logging.getLogger("tests.ops.secrets")
        caplog.set_level(logging.INFO)
        caplog.handler.addFilter(next(f for f in handler.filters if f.name == "featurestream.ops.secrets"))
        logger.info("connecting with %s", secret)
        logger.info("password alone: pl41n-pw")
        try:
            raise RuntimeError(f"bad config {jaas}")
        except RuntimeError:
            logger.exception("failed")
        text = caplog.text
        assert secret not in text and "pl41n-pw" not in text and jaas not in text
        assert text.count("***") >= 3
        assert redact(f"x {secret} y") == "x *** y"
    finally:
        logging.getLogger().removeHandler(handler)


def test_aws_credentials_from_the_environment_are_masked(caplog: pytest.LogCaptureFixture,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    key_id, secret, token = "AKIAFAKE7H3Q2ZV9XW4E", "fAkE/sEcReT+k3y0123456789abcdefGHIJKLMN", "FQoGZXIvYXdzEFAKE" * 4
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    handler = logging.StreamHandler()
    logging.getLogger().addHandler(handler)
    try:
        redactor = install_redactor()
        caplog.set_level(logging.INFO)
        caplog.handler.addFilter(redactor)
        logging.getLogger("tests.ops.secrets").warning("signing with %s / %s and %s", key_id, secret, token)
        assert key_id not in caplog.text and secret not in caplog.text and token not in caplog.text
        assert caplog.text.count("***") == 3
    finally:
        logging.getLogger().removeHandler(handler)


def read_events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_file_transport_events(tmp_path: Path) -> None:
    spec = LineageSpec(file=str(tmp_path / "ol.jsonl"))
    inputs = [ol.kafka_topic("127.0.0.1:19092,127.0.0.1:19093", "payments", [("card_id", "string")])]
    outputs = [ol.feature_group("card-activity-v1", "us-east-1", ol.account_of("arn:aws:iam::123456789012:role/x")),
               ol.path_dataset("s3a://bucket/dlq/card_activity"), ol.path_dataset(str(tmp_path / "dlq"))]
    with ol.job_run(spec, "compact.card_activity", inputs, outputs, properties={"profile": "local"}) as run:
        run_id = run.run_id
    with pytest.raises(ValueError, match="boom"), ol.job_run(spec, "compact.card_activity", inputs, outputs) as failed:
        raise ValueError("boom")
    events = read_events(tmp_path / "ol.jsonl")
    assert [e["eventType"] for e in events] == ["START", "COMPLETE", "START", "FAIL"]
    assert {e["run"]["runId"] for e in events[:2]} == {run_id} != {failed.run_id}
    first = events[0]
    assert first["job"] == {"namespace": "featurestream", "name": "compact.card_activity",
                            "facets": first["job"]["facets"]}
    assert first["job"]["facets"]["jobType"]["processingType"] == "BATCH"
    assert [(i["namespace"], i["name"]) for i in first["inputs"]] == [("kafka://127.0.0.1:19092", "payments")]
    assert [(f["name"], f["type"]) for f in first["inputs"][0]["facets"]["schema"]["fields"]] == [("card_id", "string")]
    assert [(o["namespace"], o["name"]) for o in first["outputs"]] == [
        ("arn:aws:sagemaker:us-east-1:123456789012", "feature-group/card-activity-v1"),
        ("s3://bucket", "dlq/card_activity"), ("file", str((tmp_path / "dlq").resolve()))]
    assert first["run"]["facets"]["featurestream"]["profile"] == "local"
    assert events[3]["run"]["facets"]["errorMessage"]["message"] == "boom"
    assert run.reference() == {"namespace": "featurestream", "job": "compact.card_activity", "run_id": run_id,
                               "transport": "file", "location": str((tmp_path / "ol.jsonl").resolve()),
                               "parent": None}


class Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, str], dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.received.append((self.path, dict(self.headers), json.loads(body)))
        self.send_response(201)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def http_collector() -> Iterator[str]:
    Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_http_transport_with_api_key(http_collector: str, monkeypatch: pytest.MonkeyPatch,
                                     caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("TEST_OL_KEY", "ol-api-key-123456")
    spec = LineageSpec(transport="http", url=http_collector, api_key_env="TEST_OL_KEY")
    run = ol.LineageRun(spec, "stream.card_activity", "STREAMING")
    run.start([ol.kafka_topic("k:1", "t")], [])
    run.complete()
    assert [(path, body["eventType"]) for path, _, body in Collector.received] == [
        ("/api/v1/lineage", "START"), ("/api/v1/lineage", "COMPLETE")]
    assert Collector.received[0][1]["Authorization"] == "Bearer ol-api-key-123456"
    assert run.reference()["location"] == http_collector


def test_unreachable_lineage_never_fails_the_job(caplog: pytest.LogCaptureFixture) -> None:
    errors: list[int] = []
    spec = LineageSpec(transport="http", url="http://127.0.0.1:9", timeout_s=0.5, retries=0)
    run = ol.LineageRun(spec, "stream.x", "STREAMING", on_error=lambda: errors.append(1))
    run.start([], [])
    run.fail("query failed")
    assert errors  # counted, logged, not raised


def test_a_url_credential_is_masked_in_logs_and_lineage_without_being_registered(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 19, finding 6: a driver's message quoting a URL with its password reaches neither a
    log line nor an OpenLineage FAIL event."""
    url = "jdbc:mysql://admin:Hunter2Secret@db/labels"
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(install_redactor())
    logging.getLogger("tests.ops.secrets").error("read from %s failed", url)
    assert "Hunter2Secret" not in caplog.text and "jdbc:mysql://admin:***@db/labels" in caplog.text

    spec = LineageSpec(file=str(tmp_path / "ol.jsonl"))
    with pytest.raises(RuntimeError), ol.job_run(spec, "training_set.t", [], [], properties={"url": url}):
        raise RuntimeError(f"No suitable driver found for {url}")
    text = (tmp_path / "ol.jsonl").read_text()
    assert "Hunter2Secret" not in text
    assert read_events(tmp_path / "ol.jsonl")[-1]["run"]["facets"]["errorMessage"]["message"] == (
        "No suitable driver found for jdbc:mysql://admin:***@db/labels")


def test_standard_openlineage_variables_override_the_profile(http_collector: str, monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    """OPENLINEAGE_URL/_ENDPOINT/_API_KEY/_NAMESPACE send the events where the platform says, whatever
    the profile's transport; OPENLINEAGE_DISABLED silences them."""
    spec = LineageSpec(file=str(tmp_path / "ol.jsonl"))
    monkeypatch.setenv("OPENLINEAGE_URL", http_collector)
    monkeypatch.setenv("OPENLINEAGE_ENDPOINT", "api/v2/events")
    monkeypatch.setenv("OPENLINEAGE_API_KEY", "env-ol-key-987654")
    monkeypatch.setenv("OPENLINEAGE_NAMESPACE", "payments-prod")
    with ol.job_run(spec, "training_set.fraud", [], []) as run:
        pass
    assert [(path, body["eventType"], body["job"]["namespace"]) for path, _, body in Collector.received] == [
        ("/api/v2/events", "START", "payments-prod"), ("/api/v2/events", "COMPLETE", "payments-prod")]
    assert Collector.received[0][1]["Authorization"] == "Bearer env-ol-key-987654"
    assert not (tmp_path / "ol.jsonl").exists()
    assert run.reference()["transport"] == "http" and run.reference()["namespace"] == "payments-prod"
    assert redact("key env-ol-key-987654") == "key ***"  # registered as a secret

    monkeypatch.setenv("OPENLINEAGE_DISABLED", "true")
    with ol.job_run(spec, "training_set.fraud", [], []):
        pass
    assert len(Collector.received) == 2 and not (tmp_path / "ol.jsonl").exists()
