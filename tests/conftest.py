"""Session fixtures shared by every suite: one bare local Spark, and the real local stack.

Two tiers: a test that requests a service fixture (`stack_env`, an emulator, moto, kinesis-local,
a private stack), directly or through another fixture, is marked `integration` here at collection;
everything else is a unit test, which `make unit` (`-m "not integration"`) runs without starting
any service. The stack fixture starts the services that are not already healthy and, at the end,
stops only those it started (a developer's running stack is left alone).
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_REGION", "us-east-1")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# The small JVM spark-submit starts to build a driver's command (every job subprocess of the run
# inherits this environment) runs for a second: the C1 compiler alone and the serial collector.
# Not the drivers themselves (SPARK_SUBMIT_OPTS): alone on the machine the suite took 1,342 s with
# them on C1 against ~1,220 s expected on the defaults (the long jobs' hot loops need C2).
TEST_LAUNCHER_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
os.environ.setdefault("SPARK_LAUNCHER_OPTS", TEST_LAUNCHER_OPTIONS)


# Fixtures that start or reach a service. Private ones (an emulator on a free port) count too: a
# unit run starts no process beside Spark's JVM. Besides these names, any fixture whose name says
# `emulator` or `moto` (emulator, emulator_factory, fuzz_emulator, moto_s3, ...) is one.
SERVICE_FIXTURES = frozenset({
    "stack_env",  # the five services of the local stack (tests/conftest.py)
    "kinesis_endpoint",  # a private kinesis-local (connectors/kinesis)
    "running_stack",  # a private stack on free ports (dev/stack)
    "maria",  # a private MariaDB (training/test_mariadb)
})
_SERVICE_NAME = re.compile(r"emulator|moto")


def uses_services(item: pytest.Item) -> bool:
    """Whether the test needs a service: its fixture closure (direct and indirect) holds one."""
    return any(name in SERVICE_FIXTURES or _SERVICE_NAME.search(name) for name in getattr(item, "fixturenames", ()))


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if uses_services(item):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def spark(request: pytest.FixtureRequest) -> Iterator[object]:
    """local[2], two shuffle partitions, UI off, loopback, the project jars and the AWS connector
    jar when installed; no service.

    The JVM takes its environment once, at launch, and hands it to the Python workers it forks. When
    this run also has tests on the stack, the stack starts first so that its endpoints
    (AWS_ENDPOINT_URL_*) are in that environment, as they are for a job started after `stack env`,
    whatever the order of the tests. No test needs it today (with Spark started before the stack the
    writer, engine, pipeline and training suites pass: the writer ships the endpoint it resolved on the
    driver, AWS's connector gets JVM properties, sources and S3A get options); executor code that
    reads the environment would.
    """
    if any("stack_env" in item.fixturenames for item in request.session.items):
        request.getfixturevalue("stack_env")
    from featurestream.config.profile import SparkSpec
    from featurestream.spark import local_session

    session = local_session("featurestream-tests", SparkSpec(master="local[2]", shuffle_partitions=2),
                            with_aws_connector=True)
    yield session
    session.stop()


@pytest.fixture(scope="session")
def aws_connector() -> None:
    """Tests of AWS's Spark connector skip where it is not installed (`make unit`, a bare venv), but
    fail under the targets that install it (`make test` sets FEATURESTREAM_AWS_CONNECTOR=required)."""
    if importlib.util.find_spec("feature_store_pyspark") is not None:
        return
    if os.environ.get("FEATURESTREAM_AWS_CONNECTOR") == "required":
        pytest.fail("featurestream: AWS connector tests: sagemaker-feature-store-pyspark is not installed "
                    "(`make aws-connector` installs it)", pytrace=False)
    pytest.skip("sagemaker-feature-store-pyspark is not installed (`make aws-connector`; `make test` installs it)")


@pytest.fixture(scope="session")
def stack_env() -> Iterator[dict[str, str]]:
    """All five services up; their endpoints exported into os.environ for boto3 and the jobs."""
    from featurestream.dev.stack import manager

    before = {s.name for s in manager.status() if s.healthy}
    try:
        manager.up()
    except Exception:
        # A partial start must not leave the services that did come up running.
        manager.down([s.name for s in manager.status() if s.name not in before])
        raise
    env = manager.env()
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    started = [s.name for s in manager.status() if s.name not in before]
    if started:
        manager.down(started)
