"""A lineage API that cannot be reached: a warning (one JSON line, the reason returned, the job goes
on) by default; with `required` a LineageError, which the entry point prints as one line, exit 1."""

from __future__ import annotations

import json
import logging
import socket

import boto3
import pytest
from botocore.config import Config

from featurestream.errors import FeatureStreamError
from featurestream.ops.sagemaker_lineage import Action, Artifact, LineageError, SageMakerLineage


def _unreachable() -> object:
    with socket.socket() as sock:  # a port nothing listens on: connection refused, at once
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return boto3.client("sagemaker", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}",
                        aws_access_key_id="testing", aws_secret_access_key="testing",
                        config=Config(retries={"max_attempts": 1}, connect_timeout=1))


ACTION = Action(job="training-set", subject="fraud", identity="sha256:x", uri="featurestream://training-set/fraud")
INPUTS = {"labels": Artifact(uri="postgres://db:5432/app.public.labels", type="DataSource")}


def test_a_failure_is_a_warning_by_default(caplog: pytest.LogCaptureFixture) -> None:
    errors = []
    lineage = SageMakerLineage(_unreachable(), on_error=lambda: errors.append(1))
    with caplog.at_level(logging.WARNING):
        recorded = lineage.record(ACTION, INPUTS, {})
    assert recorded.action_arn is None and recorded.error and "127.0.0.1" in recorded.error
    assert errors == [1]
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if "sagemaker_lineage_failed" in r.getMessage()]
    assert line["policy"] == "warning" and line["run"] == "training-set fraud"


def test_required_makes_it_an_error_of_one_line() -> None:
    with pytest.raises(LineageError) as raised:
        SageMakerLineage(_unreachable(), required=True).record(ACTION, INPUTS, {})
    assert isinstance(raised.value, FeatureStreamError)  # the entry point's one-line failure, exit 1
    assert str(raised.value).startswith("SageMaker lineage for training-set fraud: ")
    assert "\n" not in str(raised.value)
