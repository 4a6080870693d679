"""kinesis-local started by this suite (own ports, loopback only), and our source's jar.

The emulator runs as `node -r loopback.js main.js` from its package folder (it needs its
server.json there); the preload rewrites its hard-coded 0.0.0.0 listen host to 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest

from featurestream.connectors.kinesis import builtin_jar_path

ROOT = Path(__file__).resolve().parents[3]
KINESIS_DIR = ROOT / "featurestream" / "dev" / "stack" / "kinesis"
PACKAGE = KINESIS_DIR / "node_modules" / "kinesis-local"
STARTUP_TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _client(endpoint: str):
    return boto3.client("kinesis", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="session")
def kinesis_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not (PACKAGE / "main.js").is_file():
        pytest.fail(f"kinesis-local is not installed in {PACKAGE}: run `make npm`")
    plain, tls = _free_port(), _free_port()
    env = {**os.environ, "KINESIS_MOCK_PLAIN_PORT": str(plain), "KINESIS_MOCK_TLS_PORT": str(tls),
           "LOG_LEVEL": "WARN"}
    log_path = tmp_path_factory.mktemp("kinesis-local") / "kinesis-local.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["node", "-r", str(KINESIS_DIR / "loopback.js"), "main.js"],
                                cwd=PACKAGE, env=env, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{plain}"
    try:
        client = _client(endpoint)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"kinesis-local exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                client.list_streams()
                break
            except Exception:
                if time.monotonic() > deadline:
                    pytest.fail(f"kinesis-local not healthy after {STARTUP_TIMEOUT_S}s: {log_path}")
                time.sleep(0.1)  # service start-up poll, not a wait on stream results
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def kinesis(kinesis_endpoint: str):
    return _client(kinesis_endpoint)


@pytest.fixture(scope="session")
def kinesis_spark(spark):
    """The session `spark` fixture, checked to carry our jar (built by `make`)."""
    jar = builtin_jar_path()
    if not jar.is_file():
        pytest.fail(f"{jar} is missing: build it with `make kinesis-source`")
    if str(jar) not in (spark.conf.get("spark.jars", "") or ""):
        pytest.fail(f"{jar} is not on spark.jars of the session fixture")
    return spark


@pytest.fixture
def new_stream(kinesis) -> Callable[[int], str]:
    """Creates an ACTIVE stream with a fresh name and the given shard count."""

    def create(shards: int) -> str:
        name = f"it-{uuid.uuid4().hex[:10]}"
        kinesis.create_stream(StreamName=name, ShardCount=shards)
        kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 150})
        return name

    return create
