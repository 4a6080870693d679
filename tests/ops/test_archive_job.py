"""The raw event archive of the real streaming job: kill -9 at a random moment after the archive's
first commit (inside a later batch or between two), then a restart to the end of the topic; the
archive, read by pyiceberg (not Spark), holds every produced valid event exactly once (malformed
records go to the DLQ only). The archive rides the job's one query (no query of its own)."""

from __future__ import annotations

import random
import time
import uuid
from collections import Counter
from pathlib import Path

import boto3
import pytest
import yaml

from featurestream import iceberg
from featurestream.config import load_feature_group, load_profile
from featurestream.connectors.provisioning import ensure_feature_group
from featurestream.dev.generator import (
    GeneratorSettings,
    encode,
    ensure_topic,
    generate_events,
    produce_kafka,
    recent_start,
)
from featurestream.engine.archive import table_name
from tests.ops.job import ROOT, JobProcess

pytestmark = pytest.mark.integration


def test_the_archive_survives_kill_9_with_each_event_once(stack_env: dict[str, str], tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:8]
    group = yaml.safe_load((ROOT / "conf/feature_groups/card_activity.yaml").read_text())
    group["source"]["topic"] = f"archive-{suffix}"
    group["online_store"]["feature_group_name"] = f"archive-{suffix}"
    group["archive"] = True
    group_file = tmp_path / "card_activity.yaml"
    group_file.write_text(yaml.safe_dump(group))
    local = yaml.safe_load((ROOT / "featurestream/config/profiles/local.yaml").read_text())
    profile_file, catch_up = tmp_path / "profile.yaml", tmp_path / "catch-up.yaml"
    for path, per_trigger in ((profile_file, 60), (catch_up, 1000)):  # the restart: the rest in one batch
        path.write_text(yaml.safe_dump({
            **local, "kafka": {"bootstrap_servers": stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"],
                               "max_offsets_per_trigger": per_trigger},
            "spark": {"master": "local[2]", "shuffle_partitions": 2, "trigger_interval": "1 seconds"},
            "checkpoint_root": str(tmp_path / "checkpoints"), "dlq_path": str(tmp_path / "dlq"),
            "metrics": {"enabled": False}, "lineage": {"transport": "none", "sagemaker": {"enabled": True}}}))
    spec = load_feature_group(group_file)
    ensure_feature_group(boto3.client("sagemaker"), spec, load_profile(profile_file))

    settings = GeneratorSettings(entities=30, seed=5, events_per_second=5.0, start=recent_start(300 / 5.0),
                                 malformed_rate=0.05)
    events = generate_events(300, settings)
    bootstrap = stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"]
    ensure_topic(bootstrap, spec.source.topic, partitions=2)
    produce_kafka(list(encode(events, settings)), bootstrap, spec.source.topic)

    args = ["--feature-group", str(group_file), "--env"]
    first = JobProcess([*args, str(profile_file)], tmp_path / "run1").start()
    try:
        first.wait_for(lambda e: e.get("event") == "archive_batch", 600)
        time.sleep(random.uniform(0.0, 2.0))  # 300 events at 60 a trigger: more batches follow
    finally:
        first.stop_if_running()  # kill -9 of the job's process group, at a point the archive is writing
    second = JobProcess([*args, str(catch_up), "--available-now"], tmp_path / "run2").start()
    assert second.wait(900) == 0
    (started,) = [e for e in second.events() if e.get("event") == "stream_started"]
    assert [q["name"] for q in started["queries"]] == [f"{spec.name}-features"]  # one query reads the topic

    catalog = iceberg.load_catalog(iceberg.from_profile(load_profile(profile_file)))
    table = catalog.load_table(("raw_events", table_name("kafka", spec.source.topic)))
    archived = Counter(r["transaction_id"] for r in table.scan(selected_fields=("transaction_id",)).to_arrow()
                       .to_pylist())
    assert archived == Counter(str(e["transaction_id"]) for e in events)  # each valid event once, no malformed one
    assert [f.name for f in table.spec().fields] == ["event_date"]

    # SageMaker lineage: the stream action Produced the archive (and the group); two starts, one of each.
    sm = boto3.client("sagemaker")
    uri = f"iceberg://{iceberg.from_profile(load_profile(profile_file)).name}/raw_events.{table.name()[-1]}"
    (artifact,) = sm.list_artifacts(SourceUri=uri, ArtifactType="RawEventArchive")["ArtifactSummaries"]
    (edge,) = sm.list_associations(DestinationArn=artifact["ArtifactArn"])["AssociationSummaries"]
    assert (edge["AssociationType"], edge["SourceType"]) == ("Produced", "featurestream-stream")
    produced = sm.list_associations(SourceArn=edge["SourceArn"], AssociationType="Produced")["AssociationSummaries"]
    assert sorted(e["DestinationType"] for e in produced) == ["FeatureGroup", "RawEventArchive"]
