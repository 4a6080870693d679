"""The raw event archive against the real catalog (JDBC on PostgreSQL, files on the S3 emulator),
read back by pyiceberg, not Spark.

- The writer: a batch replayed after a restart is not appended twice; a new checkpoint at the same
  path (a new query, batch ids from 0 again) is not taken for a replay.
- The job: the archive rides the source's one query (one Kafka source, each record counted once
  in the progress), each valid event once, no commit for a batch without a valid event, and a
  batch replayed after a crash between the Iceberg commit and Spark's commit log is not archived
  twice.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from featurestream import iceberg
from featurestream.config import load_feature_group, load_profile
from featurestream.connectors.provisioning import ensure_feature_group
from featurestream.dev.generator import ensure_topic, produce_kafka
from featurestream.engine import archive
from featurestream.engine.archive import ArchiveWriter, table_name
from featurestream.engine.archive_switch import RETIRED, check_switch, legacy_checkpoint
from featurestream.engine.pipeline import source_checkpoint, start_source_query
from featurestream.errors import ConfigError
from featurestream.io import s3a

GROUP = """
entity: {key: card_id}
event_time: {field: event_time}
source:
  type: kafka
  topic: TOPIC
  schema: {transaction_id: string, card_id: string, amount: double, event_time: timestamp}
transforms:
  - filter: "amount > 0"
windows: {tile: 1m, allowed_lateness: 5m}
features:
  - {name: n, agg: count, windows: [5m]}
online_store: {feature_group_name: FGNAME, ttl: 7d}
archive: true
"""


def _catalog(spark: Any, stack_env: dict[str, str]) -> iceberg.IcebergCatalog:
    catalog = iceberg.from_profile(load_profile("local"))
    s3a.configure_session(spark, stack_env["AWS_ENDPOINT_URL_S3"], "us-east-1", ["featurestream-offline"])
    iceberg.configure_session(spark, catalog)
    return catalog


def _new_query(checkpoint: Path) -> None:
    """What Spark writes when it creates a query at `checkpoint`: its id."""
    checkpoint.mkdir(parents=True, exist_ok=True)
    (checkpoint / "metadata").write_text(json.dumps({"id": str(uuid.uuid4())}) + "\n")


def test_a_replayed_batch_is_archived_once(stack_env: dict[str, str], spark: Any, tmp_path: Path) -> None:
    catalog = _catalog(spark, stack_env)
    table = catalog.spark_table("raw_events", table_name("kafka", f"Payments-{uuid.uuid4().hex[:6]}"))
    schema = "card_id string, amount double, event_time timestamp"

    def batch(first: int, count: int) -> tuple[Any, list[tuple[str, float, datetime]]]:
        rows = [(f"c{i % 3}", i * 1.5, datetime(2026, 11, 1 + i % 2, 12, tzinfo=UTC))
                for i in range(first, first + count)]
        return spark.createDataFrame(rows, schema), rows

    checkpoint = tmp_path / "features"
    _new_query(checkpoint)
    archive.ensure_table(spark, table, spark.createDataFrame([], schema).schema)
    first, rows0 = batch(0, 6)
    second, rows1 = batch(6, 4)
    assert ArchiveWriter(table, str(checkpoint), "event_time").write(first, 0, 6)
    restarted = ArchiveWriter(table, str(checkpoint), "event_time")  # after a crash before Spark's commit log
    assert not restarted.write(first, 0, 6)
    assert restarted.write(second, 1, 4)
    _new_query(checkpoint)  # the checkpoint moved away and a new one made: batch 0 is new events
    third, rows2 = batch(10, 2)
    assert ArchiveWriter(table, str(checkpoint), "event_time").write(third, 0, 2)

    loaded = iceberg.load_catalog(catalog).load_table(tuple(table.split(".")[1:]))
    got = Counter((r["card_id"], r["amount"], r["event_time"]) for r in loaded.scan().to_arrow().to_pylist())
    assert got == Counter(rows0 + rows1 + rows2)
    assert [f.name for f in loaded.spec().fields] == ["event_date"]


# An hour before the run: within the group's TTL and `event_time.max_future` on any day.
EVENT_TIME = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record(i: int) -> bytes:
    # One event time for all: the watermark never moves after the first batch, so Spark runs no
    # batch without data after the last one, and the batch replayed below is one with events.
    return json.dumps({"transaction_id": f"t{i}", "card_id": f"c{i % 4}", "amount": float(i % 5),
                       "event_time": EVENT_TIME}).encode()


@pytest.mark.parametrize("groups", [1, 2])
def test_the_job_reads_the_source_once_and_archives_each_event_once(stack_env: dict[str, str], spark: Any,
                                                                     tmp_path: Path, groups: int) -> None:
    """One group, or two on the topic (the second without `archive:`, another filter): one archive."""
    catalog = _catalog(spark, stack_env)
    suffix = uuid.uuid4().hex[:8]
    specs = []
    for name, text in (("archived", GROUP), ("other", GROUP.replace("amount > 0", "amount > 2").replace(
            "archive: true", "")))[:groups]:
        group_file = tmp_path / f"{name}.yaml"
        group_file.write_text(text.replace("TOPIC", f"archive-{suffix}").replace("FGNAME", f"{name}-{suffix}"))
        specs.append(load_feature_group(group_file))
    spec = specs[0]
    profile = load_profile("local")
    profile = profile.model_copy(update={
        "checkpoint_root": str(tmp_path / "checkpoints"), "dlq_path": str(tmp_path / "dlq"),
        "kafka": profile.kafka.model_copy(update={"bootstrap_servers": stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"],
                                                  "max_offsets_per_trigger": 10}),
    })
    for each in specs:
        ensure_feature_group(boto3.client("sagemaker"), each, profile)
    bootstrap, topic = profile.kafka.bootstrap_servers, spec.source.topic
    ensure_topic(bootstrap, topic, partitions=2)
    table = archive.source_table(spec, profile, catalog)
    # 24 valid events (amounts of 0 too: the archive is before the transforms) and 6 malformed records.
    valid = [_record(i) for i in range(24)]
    malformed = [b"{not json", b'{"card_id": "c1"}'] * 3
    produced = [v for i, event in enumerate(valid) for v in ([malformed[i // 4], event] if i % 4 == 0 else [event])]
    produce_kafka([(None, value) for value in produced], bootstrap, topic)

    def run(expected_rows: int) -> None:
        started = start_source_query(spark, specs, profile, available_now=True, archive_table=table)
        for query in started.all():
            query.awaitTermination()
            assert query.exception() is None, query.exception()
        progress = [p for query in started.all() for p in query.recentProgress]
        assert progress and all(len(p["sources"]) == 1 for p in progress)  # one Kafka source, one query
        assert sum(int(p["numInputRows"]) for p in progress) == expected_rows  # each record fetched once

    run(len(produced))
    loaded = iceberg.load_catalog(catalog).load_table(tuple(table.split(".")[1:]))
    committed = {int(s.summary[archive.BATCH_ID]) for s in loaded.snapshots() if s.summary is not None}
    # A crash after the last batch's Iceberg commit, before Spark logged the batch as done: Spark
    # runs it again at the next start. Then a batch of malformed records only: nothing to commit.
    checkpoint = Path(source_checkpoint(profile, specs))
    last = max(int(p.name) for p in (checkpoint / "commits").iterdir() if p.name.isdigit())
    assert last in committed
    replayed = json.loads((checkpoint / "offsets" / str(last)).read_text().splitlines()[2])
    previous = json.loads((checkpoint / "offsets" / str(last - 1)).read_text().splitlines()[2])
    for done in (checkpoint / "commits" / str(last), checkpoint / "commits" / f".{last}.crc"):
        done.unlink(missing_ok=True)
    produce_kafka([(None, b"{broken")] * 4, bootstrap, topic)
    run(sum(replayed[topic].values()) - sum(previous[topic].values()) + 4)

    loaded.refresh()
    archived = loaded.scan().to_arrow().to_pylist()
    assert Counter(r["transaction_id"] for r in archived) == Counter(json.loads(v)["transaction_id"] for v in valid)
    assert all(r["event_date"] == r["event_time"].date() for r in archived)
    summaries = [s.summary for s in loaded.snapshots() if s.summary is not None]
    batches = [int(s[archive.BATCH_ID]) for s in summaries]
    assert sorted(batches) == sorted(committed)  # the replayed batch not committed again
    assert all(int(s["added-records"]) > 0 for s in summaries)  # no empty commit (the malformed-only batch)


def _logged(checkpoint: Path, batch_id: int, offsets: dict[str, Any], *, done: bool = True) -> None:
    """Batch `batch_id` in a query's checkpoint as Spark logs it: its offsets, and its commit when done."""
    for folder in ("offsets", "commits"):
        (checkpoint / folder).mkdir(parents=True, exist_ok=True)
    (checkpoint / "offsets" / str(batch_id)).write_text(f'v1\n{{"batchWatermarkMs":0}}\n{json.dumps(offsets)}\n')
    if done:
        (checkpoint / "commits" / str(batch_id)).write_text('v1\n{"nextBatchWatermarkMs":0}\n')


def test_the_archive_query_of_before_is_retired_only_where_it_stood(stack_env: dict[str, str], spark: Any,
                                                                   tmp_path: Path) -> None:
    """The old `_archive/<table>` checkpoint: exit 2 when continuing from the features query's offsets
    would lose or double events; retired (and never read again) when it stood at the same offsets."""
    catalog = _catalog(spark, stack_env)
    profile = load_profile("local").model_copy(update={"checkpoint_root": str(tmp_path / "checkpoints")})
    table = catalog.spark_table("raw_events", table_name("kafka", f"old-{uuid.uuid4().hex[:6]}"))
    features = tmp_path / "checkpoints" / "g" / "features"
    old = Path(legacy_checkpoint(profile, table))

    def check() -> None:
        check_switch(spark, profile, table, str(features), "local.yaml")

    check()  # no archive query before: nothing to do
    _logged(features, 0, {"t": {"0": 5, "1": 4}})
    _logged(features, 1, {"t": {"0": 9, "1": 7}})
    _logged(features, 2, {"t": {"0": 12, "1": 7}}, done=False)  # replayed at the start: not yet done
    _logged(old, 0, {"t": {"0": 5, "1": 4}})
    _logged(old, 1, {"t": {"0": 9, "1": 7}}, done=False)  # planned, never run
    with pytest.raises(ConfigError, match=r"^local.yaml: checkpoint_root: .* would be missing from the archive: "):
        check()
    _logged(old, 1, {"t": {"0": 12, "1": 7}})
    with pytest.raises(ConfigError, match="would be archived twice"):
        check()
    # Batch 1 of before was appended to the table, then the job died before Spark logged it.
    _logged(old, 1, {"t": {"0": 9, "1": 7}}, done=False)
    (old / "commits" / "1").unlink()
    archive.ensure_table(spark, table, spark.createDataFrame([], "card_id string").schema)
    row = [("c1", datetime(2026, 11, 1, tzinfo=UTC).date())]
    (spark.createDataFrame(row, f"card_id string, {archive.EVENT_DATE} date").writeTo(table)
     .option(f"snapshot-property.{archive.WRITER}", str(old))
     .option(f"snapshot-property.{archive.BATCH_ID}", "1").append())
    check()
    assert json.loads((old / RETIRED).read_text())["continued_by"] == str(features)
    _logged(features, 2, {"t": {"0": 12, "1": 7}})
    check()  # retired: the features query moves on without it
