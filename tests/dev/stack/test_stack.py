"""The local stack against the real services: health, idempotence, loopback-only listeners,
a round trip through each service, and a clean `down`.

Tests run in file order: the last one stops the stack and checks that nothing is left.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from kafka import KafkaConsumer, KafkaProducer

from featurestream.dev.stack import manager, process
from featurestream.dev.stack.config import StackConfig

from .conftest import TESTED_SERVICES

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


def listeners_by_pid() -> dict[int, list[str]]:
    """`ss -ltnp` parsed: pid -> local addresses ("host:port") of its listening TCP sockets."""
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    found: dict[int, list[str]] = {}
    for line in out.splitlines():
        fields = line.split()
        local = fields[3]
        for pid in re.findall(r"pid=(\d+)", line):
            found.setdefault(int(pid), []).append(local)
    return found


def aws(service: str, exports: dict[str, str]) -> Any:
    endpoint = {"s3": "AWS_ENDPOINT_URL_S3", "kinesis": "AWS_ENDPOINT_URL_KINESIS"}[service]
    return boto3.client(
        service,
        endpoint_url=exports[endpoint],
        region_name=exports["AWS_REGION"],
        aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
    )


def test_all_services_healthy(stack_config: StackConfig, running_stack: dict[str, int | None]) -> None:
    rows = manager.status(TESTED_SERVICES, config=stack_config)
    assert [(r.name, r.healthy) for r in rows] == [(name, True) for name in TESTED_SERVICES]
    assert all(r.pid is not None and r.port == stack_config.port(r.name) for r in rows)
    text = manager.format_status(rows)
    assert all(name in text for name in TESTED_SERVICES)


def test_up_twice_is_harmless(stack_config: StackConfig, running_stack: dict[str, int | None]) -> None:
    reports = manager.start_reports(TESTED_SERVICES, config=stack_config)
    assert {r.name: r.action for r in reports} == dict.fromkeys(TESTED_SERVICES, "already running")
    rows = manager.status(TESTED_SERVICES, config=stack_config)
    assert {r.name: r.pid for r in rows} == running_stack  # nothing restarted
    assert all(r.healthy for r in rows)


def test_cli_status_through_python_m(stack_config: StackConfig, running_stack: dict[str, int | None],
                                     stack_exports: dict[str, str]) -> None:
    env = {**os.environ, "FEATURESTREAM_STATE_DIR": str(stack_config.state_dir)}
    for name, port in stack_config.ports.items():
        env[f"FEATURESTREAM_{name.upper().replace('-', '_')}_PORT"] = str(port)
    done = subprocess.run([sys.executable, "-m", "featurestream.dev.stack", "status", *TESTED_SERVICES],
                          env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    for name, pid in running_stack.items():
        assert re.search(rf"^{re.escape(name)}\s+\d+\s+{pid}\s+yes\s", done.stdout, re.M), done.stdout
    password = Path(stack_exports["FEATURESTREAM_JDBC_PASSWORD_FILE"]).read_text().strip()
    assert password not in done.stdout + done.stderr


def test_every_listener_is_on_loopback(stack_config: StackConfig, running_stack: dict[str, int | None]) -> None:
    listening = listeners_by_pid()
    for name, pid in running_stack.items():
        assert pid is not None
        addresses = listening.get(pid, [])
        assert f"127.0.0.1:{stack_config.port(name)}" in addresses, (name, addresses)
        for address in addresses:
            host = address.rsplit(":", 1)[0]
            assert host in ("127.0.0.1", "[::ffff:127.0.0.1]"), f"{name} (pid {pid}) listens on {address}"


def test_kafka_message_round_trip(stack_exports: dict[str, str]) -> None:
    bootstrap = stack_exports["FEATURESTREAM_KAFKA_BOOTSTRAP"]
    topic = f"stack-test-{uuid.uuid4().hex[:8]}"
    sent = {f"key-{i}": f"value-{i}-{uuid.uuid4().hex}" for i in range(50)}
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for key, value in sent.items():
        producer.send(topic, key=key.encode(), value=value.encode())
    producer.flush(timeout=30)
    producer.close()

    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, consumer_timeout_ms=20_000)
    received: dict[str, str] = {}
    for message in consumer:
        received[message.key.decode()] = message.value.decode()
        if len(received) == len(sent):
            break
    consumer.close()
    assert received == sent


def test_spark_kafka_source_reads_a_topic(stack_exports: dict[str, str], spark: Any) -> None:
    """The jars from conf/jars/pom.xml make Spark's Kafka source work against the broker."""
    bootstrap = stack_exports["FEATURESTREAM_KAFKA_BOOTSTRAP"]
    topic = f"stack-spark-{uuid.uuid4().hex[:8]}"
    values = [f"v{i}" for i in range(20)]
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    for value in values:
        producer.send(topic, value=value.encode())
    producer.flush(timeout=30)
    producer.close()

    frame = (spark.read.format("kafka")
             .option("kafka.bootstrap.servers", bootstrap).option("subscribe", topic)
             .option("startingOffsets", "earliest").load())
    assert sorted(bytes(r.value).decode() for r in frame.collect()) == sorted(values)


def test_kinesis_put_get_round_trip(stack_exports: dict[str, str]) -> None:
    client = aws("kinesis", stack_exports)
    stream = f"stack-test-{uuid.uuid4().hex[:8]}"
    client.create_stream(StreamName=stream, ShardCount=1)
    deadline = time.monotonic() + 30
    while client.describe_stream_summary(StreamName=stream)[
            "StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
        assert time.monotonic() < deadline, "stream never became ACTIVE"
        time.sleep(0.1)
    payloads = [f"record-{i}".encode() for i in range(25)]
    client.put_records(StreamName=stream, Records=[
        {"Data": data, "PartitionKey": f"pk-{i}"} for i, data in enumerate(payloads)])
    shard = client.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
    iterator = client.get_shard_iterator(
        StreamName=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    got: list[bytes] = []
    for _ in range(20):
        page = client.get_records(ShardIterator=iterator, Limit=1000)
        got += [r["Data"] for r in page["Records"]]
        if len(got) >= len(payloads):
            break
        iterator = page["NextShardIterator"]
    assert got == payloads  # one shard keeps order


def test_s3_put_get_round_trip(stack_exports: dict[str, str]) -> None:
    client = aws("s3", stack_exports)
    bucket = f"stack-test-{uuid.uuid4().hex[:8]}"
    body = os.urandom(100_000)
    client.create_bucket(Bucket=bucket)
    put = client.put_object(Bucket=bucket, Key="a/b.bin", Body=body)
    assert put["ETag"].strip('"') == hashlib.md5(body).hexdigest()  # S3's ETag of a single-part upload
    got = client.get_object(Bucket=bucket, Key="a/b.bin")["Body"].read()
    assert got == body


def test_s3_holds_the_local_profiles_offline_bucket(stack_exports: dict[str, str]) -> None:
    """`stack up` creates the bucket the `local` profile names: the emulator, like AWS, refuses a
    feature group whose offline-store bucket is missing."""
    client = aws("s3", stack_exports)
    buckets = {b["Name"] for b in client.list_buckets()["Buckets"]}
    assert "featurestream-offline" in buckets


def test_postgres_query_with_the_generated_password(stack_config: StackConfig,
                                                     stack_exports: dict[str, str]) -> None:
    secret = Path(stack_exports["FEATURESTREAM_JDBC_PASSWORD_FILE"])
    pgpass = Path(stack_exports["FEATURESTREAM_PGPASSFILE"])
    for path in (secret, pgpass):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    url = stack_exports["FEATURESTREAM_JDBC_URL"]
    assert url == f"jdbc:postgresql://127.0.0.1:{stack_config.port('postgres')}/featurestream?user=featurestream"
    assert secret.read_text().strip() not in url

    amounts = [12.5, 7.25, 100.0, 0.25]
    sql = ("CREATE TEMP TABLE t (amount numeric); "
           f"INSERT INTO t VALUES {', '.join(f'({a})' for a in amounts)}; "
           "SELECT current_user, count(*), sum(amount) FROM t;")
    psql = ["psql", "-X", "-At", "-h", "127.0.0.1", "-p", str(stack_config.port("postgres")),
            "-U", "featurestream", "-d", "featurestream", "-c", sql]
    env = {**os.environ, "PGPASSFILE": str(pgpass), "PGCONNECT_TIMEOUT": "5"}
    env.pop("PGPASSWORD", None)
    done = subprocess.run(psql, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"featurestream|{len(amounts)}|{sum(amounts):.2f}"

    # TCP needs the password: with an empty pgpass and no prompt, the login is refused.
    empty = {**env, "PGPASSFILE": os.devnull}
    refused = subprocess.run([*psql[:-2], "-w", "-c", "SELECT 1"], env=empty, capture_output=True,
                             text=True, check=False)
    assert refused.returncode != 0
    assert "password" in refused.stderr


def test_feature_store_health_and_env(stack_exports: dict[str, str]) -> None:
    url = stack_exports["AWS_ENDPOINT_URL_SAGEMAKER"]
    assert url == stack_exports["AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME"]
    import urllib.request

    with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
        assert response.status == 200


def test_down_leaves_nothing_running(stack_config: StackConfig, running_stack: dict[str, int | None]) -> None:
    records = {name: process.read_pid_file(stack_config.service_dir(name) / f"{name}.pid")
               for name in running_stack}
    assert all(r is not None for r in records.values())
    rows = manager.down(config=stack_config)
    assert all(r.pid is None and not r.healthy for r in rows)
    for name, record in records.items():
        assert record is not None and not process.is_running(record), f"{name} still runs"
    listening = listeners_by_pid()
    assert not set(listening) & {r.pid for r in records.values() if r}
    open_ports = [p for p in stack_config.ports.values() if process.port_open(p)]
    assert open_ports == []
    # No server process of this state dir survives (e.g. a postgres backend or a JVM child).
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    assert str(stack_config.state_dir) not in ps


def test_concurrent_ups_start_a_service_once() -> None:
    """Two `up` calls racing on one state dir: one starts S3, the other finds it running."""
    from concurrent.futures import ThreadPoolExecutor

    from .conftest import make_state_dir, private_environ

    base = make_state_dir()
    config = StackConfig.from_env({**os.environ, **private_environ(base / "state")})
    try:
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda _: manager.start_reports(["s3"], config=config), range(2)))
        actions = sorted(reports[0].action for reports in results)
        assert actions == ["already running", "started"]
        assert manager.status(["s3"], config=config)[0].healthy
    finally:
        manager.down(["s3"], config=config)
        shutil.rmtree(base, ignore_errors=True)
    assert not process.port_open(config.port("s3"))
