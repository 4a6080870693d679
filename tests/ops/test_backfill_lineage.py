"""Backfill's SageMaker lineage from an RDS table, on a private emulator: the table by its masked
URL (no user, no password, no parameters) ContributedTo the backfill action, which Produced the
feature group's artifact (ARN, definition fingerprint); a second record adds nothing."""

from __future__ import annotations

import argparse
from pathlib import Path

import boto3
import pytest

from featurestream.backfill.sources import JdbcSource
from featurestream.cli.commands.backfill import _record_sagemaker
from featurestream.config import load_feature_group, load_profile
from featurestream.config.fingerprint import fingerprint
from featurestream.config.training_set import JdbcSpec
from featurestream.connectors.provisioning import ensure_feature_group
from tests.emulators import running_emulator

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration  # starts an emulator of its own


def test_rds_source_to_feature_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_emulator(tmp_path) as emu:
        monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER", emu.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        spec = load_feature_group(ROOT / "conf/feature_groups/card_activity.yaml")
        profile = load_profile("local")
        client = boto3.client("sagemaker", region_name=profile.feature_store.region)
        ensure_feature_group(client, spec, profile)
        source = JdbcSource(JdbcSpec(url="jdbc:postgresql://db.internal:5432/payments?user=svc&ssl=true"),
                            "events")
        args = argparse.Namespace(sagemaker_lineage=True, output=None)
        first = _record_sagemaker(args, spec, profile, source, "s3a://b/data")
        assert first is not None and first.error is None and first.associations == 2
        rds = client.describe_artifact(ArtifactArn=first.artifacts["source"])
        assert rds["Source"]["SourceUri"] == "postgres://db.internal:5432/payments.public.events"
        assert rds["ArtifactType"] == "DataSource"
        group = client.describe_artifact(ArtifactArn=first.artifacts["feature_group"])
        assert group["Source"]["SourceTypes"][0]["Value"] == fingerprint(spec)
        again = _record_sagemaker(args, spec, profile, source, "s3a://b/data")
        assert again is not None and again.associations == 0 and again.artifacts == first.artifacts
