"""No AWS credential value appears in any log line, botocore's DEBUG wire logs included.

Known fake credentials are set in the environment; the writer's executor code runs in this
process (same code path as a Spark task) against the emulator with throttling, a rejected record
and finally a dead endpoint, with every logger at DEBUG; then the captured text is grepped.
"""

from __future__ import annotations

import io
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from featurestream.connectors.writer.errors import RetriesExhausted
from featurestream.connectors.writer.plan import WritePlan
from featurestream.connectors.writer.redact import install_redaction
from featurestream.connectors.writer.task import write_partition
from tests.connectors.writer.helpers import create_group, events, target, writer_settings

pytestmark = pytest.mark.integration

FAKE = {
    "AWS_ACCESS_KEY_ID": "AKIAFAKEWRITERTEST01",
    "AWS_SECRET_ACCESS_KEY": "fakeWriterSecret/ForTheLogTest+0123456789",
    "AWS_SESSION_TOKEN": "FakeSessionTokenForTheWriterLogTest9876543210",
}


@pytest.fixture
def debug_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    for key, value in FAKE.items():
        monkeypatch.setenv(key, value)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    saved = (root.level, {n: logging.getLogger(n).level for n in ("botocore", "urllib3", "connectors")})
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in saved[1]:
        logging.getLogger(name).setLevel(logging.DEBUG)
    install_redaction()
    yield buffer
    root.removeHandler(handler)
    root.setLevel(saved[0])
    for name, level in saved[1].items():
        logging.getLogger(name).setLevel(level)


def _plan(url: str, name: str, **store: Any) -> WritePlan:
    values: dict[str, Any] = {"threads_per_partition": 2, "max_attempts": 20, "backoff_base_ms": 5,
                              "backoff_cap_ms": 50, "call_timeout_s": 5.0, **store}
    return WritePlan(target(name), writer_settings(**values), endpoint_url=url,
                     deadline_epoch=time.time() + 60, worker_tps=None)


def _batch(n_values: list[object]) -> pa.RecordBatch:
    rows = events(len(n_values), seed=21)
    return pa.record_batch({
        "id": [r["id"] for r in rows], "ts": pa.array([r["ts"] for r in rows], pa.timestamp("us", tz="UTC")),
        "n": [str(v) for v in n_values], "x": [r["x"] for r in rows], "s": [r["s"] for r in rows],
    })


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_credentials_never_reach_the_logs(emulator_factory, debug_logs: io.StringIO) -> None:
    emu = emulator_factory(throttle_rate=0.5, seed=5)
    name = create_group(emu.url)["FeatureGroupName"]
    # PutRecord: one call per record, so the seeded throttling surely hits some of them.
    out = list(write_partition(_plan(emu.url, name, write_mode="put"), iter([_batch([1, 2, "bad", 4, 5, 6, 7, 8])])))
    kinds = out[0].column(0).to_pylist()
    assert kinds.count("dlq") == 1

    dead = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(RetriesExhausted) as failure:
        list(write_partition(_plan(dead, name, max_attempts=3), iter([_batch([1])])))
    logging.getLogger("connectors.tests").exception("batch failed: %s", failure.value)

    text = debug_logs.getvalue()
    # The test has teeth only if botocore really logged signed requests.
    assert "Authorization" in text and "Credential=***" in text and "ThrottlingException" in text
    for name_, value in FAKE.items():
        assert value not in text, f"{name_} leaked into the logs"
