"""Session fixtures shared by every suite: one local Spark, and the real local stack.

The stack fixture starts the services that are not already healthy and, at the end, stops only
those it started (a developer's running stack is left alone).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_REGION", "us-east-1")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture(scope="session")
def spark(stack_env: dict[str, str]) -> Iterator[object]:
    """local[2], few shuffle partitions, UI off, loopback, the project jars and the AWS connector jar.

    It depends on the stack so that the endpoints are in the environment before the JVM and its
    Python workers start: executors read AWS_ENDPOINT_URL_* like any boto3 user.
    """
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
