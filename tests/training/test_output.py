"""Output to s3:// (moto's S3 through S3A) as CSV with a split, and the manifest beside it; the rows
equal the local Parquet build of the same config, and output.mode=error refuses an existing set."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest

from featurestream.config.training_set import TrainingSetSpec
from featurestream.training.build import build_training_set
from featurestream.training.output import OutputExistsError
from tests.training import data
from tests.training.conftest import Loaded
from tests.training.expected import ALL_GROUPS, output_columns
from tests.training.oracle import Oracle

pytestmark = pytest.mark.integration


def _read_csv_objects(client: Any, bucket: str, prefix: str) -> pd.DataFrame:
    listed = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    frames = []
    for item in listed.get("Contents", []):
        if item["Key"].endswith(".csv"):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
            if body.strip():
                frames.append(pd.read_csv(io.StringIO(body)))
    return pd.concat(frames, ignore_index=True)


def test_csv_to_s3_with_split_and_manifest(spark: Any, loaded: Loaded, stack_env: dict[str, str]) -> None:
    client = boto3.client("s3", endpoint_url=stack_env["AWS_ENDPOINT_URL_S3"], region_name="us-east-1")
    bucket = f"fs-training-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    output = {"path": f"s3://{bucket}/sets/fraud", "format": "csv",
              "split": {"validation_start": "2026-03-03T00:00:00Z"}}
    spec = TrainingSetSpec.model_validate(loaded.spec(output=output))
    result = build_training_set(spark, spec, source="test")
    assert result.path == f"s3a://{bucket}/sets/fraud"

    manifest = json.loads(client.get_object(Bucket=bucket, Key="sets/fraud/manifest.json")["Body"].read())
    train = _read_csv_objects(client, bucket, "sets/fraud/train/")
    validation = _read_csv_objects(client, bucket, "sets/fraud/validation/")
    assert manifest["output"]["splits"]["train"]["rows"] == len(train)
    assert manifest["output"]["splits"]["validation"]["rows"] == len(validation)
    assert not any(o["Key"].startswith("sets/fraud/_staging") for o in
                   client.list_objects_v2(Bucket=bucket, Prefix="sets/fraud/").get("Contents", []))

    columns = output_columns(ALL_GROUPS)
    ours = pd.concat([train, validation], ignore_index=True)[columns]
    expected = Oracle(loaded.scenario.labels, loaded.scenario.groups).expected(ALL_GROUPS)
    for column in ("label_time", "card_activity_event_time", "profile_event_time", "merchant_risk_event_time"):
        ours[column] = pd.to_datetime(ours[column], utc=True, format="ISO8601")
    pd.testing.assert_frame_equal(data.normalise(ours, columns), data.normalise(expected, columns))


def test_mode_error_refuses_an_existing_output(spark: Any, loaded: Loaded, tmp_path: Path) -> None:
    out = tmp_path / "exists"
    out.mkdir()
    spec = TrainingSetSpec.model_validate(loaded.spec(output={"path": str(out), "mode": "error"}))
    with pytest.raises(OutputExistsError):
        build_training_set(spark, spec, source="test")
