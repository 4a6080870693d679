"""A backfill of an Iceberg-format group writes the group's own Iceberg table (the emulator's, in the
local catalog: the stack's PostgreSQL, files on its S3): read with pyiceberg, not our code, it holds
the rows the same backfill writes in the Glue layout, each once, beside the Feature Store's own rows;
a `--restart` re-run replaces them (never duplicates), a replayed batch replaces itself, and a run
killed with -9 resumes with each row once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from featurestream import iceberg
from featurestream.backfill.chunks import range_id
from featurestream.backfill.offline import OfflineStoreSink, iceberg_data_root
from featurestream.config import load_profile
from featurestream.connectors.provisioning import feature_definitions
from featurestream.dev.feature_store import EmulatorProcess
from featurestream.io import s3a
from tests.backfill.harness import (
    Setup,
    backfill,
    kill_9_after_a_finished_chunk,
    new_setup,
    offline_records,
    write_events,
)
from tests.backfill.test_resume import START_MS
from tests.dev.feature_store.helpers import record, runtime_client, sagemaker_client
from tests.engine.harness import event
from tests.ops.job import ROOT, job_env

pytestmark = pytest.mark.integration
BUCKET = "featurestream-offline"  # created by the stack's S3 service
TIMES = ("write_time", "api_invocation_time")
IGNORED = (*TIMES, "year", "month", "day", "hour")  # pyarrow adds the Glue layout's partition folders


@pytest.fixture
def emulator(stack_env: dict[str, str], tmp_path: Path) -> Iterator[EmulatorProcess]:
    emu = EmulatorProcess(tmp_path / "state", catalog_profile="local", flush_interval_s=3600).start()
    yield emu
    emu.stop()


def _key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted((k, v) for k, v in row.items() if k not in IGNORED))


def _table_rows(table: Any) -> list[dict[str, Any]]:
    table.refresh()
    return list(table.scan().to_arrow().to_pylist())


def test_a_backfill_writes_the_iceberg_table_once_and_a_rerun_replaces_its_rows(
        spark: Any, emulator: EmulatorProcess, stack_env: dict[str, str], tmp_path: Path) -> None:
    glue = new_setup(tmp_path / "glue", "127.0.0.1:1")
    spec = glue.spec
    catalog = iceberg.from_profile(load_profile("local"))
    cfg, table = _iceberg_group(spark, emulator, stack_env, spec, catalog, "backfill-iceberg", live_rows=3)
    live = Counter(_key(r) for r in _table_rows(table))
    assert sum(live.values()) == 3

    cards = ("card-a", "card-b", "card-c")
    events = [event(cards[i % 3], START_MS + i * 61_000, float(i % 4) + 0.5, f"m-{i % 2}") for i in range(40)]
    backfill(spark, glue, events, timedelta(minutes=20))  # the Glue layout, read with pyarrow: the reference
    expected = Counter(_key(r) for r in offline_records(glue).values())
    assert sum(expected.values()) >= len(events)

    ice_root = tmp_path / "ice"
    ice = Setup(spec, glue.spec_file, glue.profile.model_copy(update={"checkpoint_root": str(ice_root / "ck")}),
                ice_root)
    target = iceberg_data_root(catalog.spark_table(cfg["Database"], cfg["TableName"]))
    started = time.monotonic()
    first = _backfill_into(spark, ice, events, target)
    first_s = time.monotonic() - started
    rows = _table_rows(table)
    got = Counter(_key(r) for r in rows)
    assert got == expected + live, (list(got - expected - live)[:1], list(expected + live - got)[:1])
    stamps = {r["api_invocation_time"] for r in rows if _key(r) not in live}
    assert len(stamps) == 1  # one run's rows

    _backfill_into(spark, ice, events, target, restart=True)  # replaces the first run's rows
    rows = _table_rows(table)
    assert Counter(_key(r) for r in rows) == expected + live
    assert {r["api_invocation_time"] for r in rows if _key(r) not in live}.isdisjoint(stamps)

    # A batch replayed after a kill -9 (the engine's checkpoint had not committed it) replaces itself.
    sink = OfflineStoreSink(spec, target, f"{first.work}/out", first.range_id)
    types = {"Integral": "bigint", "Fractional": "double", "String": "string"}
    names = [d["FeatureName"] for d in feature_definitions(spec)]
    ddl = ", ".join(f"`{d['FeatureName']}` " + ("timestamp" if d["FeatureName"] == spec.event_time.field
                                                else types[d["FeatureType"]]) for d in feature_definitions(spec))
    values = {spec.entity.key: "replayed", spec.event_time.field: datetime(2026, 12, 1, 0, 5, tzinfo=UTC), "n_5m": 5}
    full = spark.createDataFrame([tuple(values.get(n) for n in names)], ddl)
    sink.write_batch(full, 999)
    sink.write_batch(full, 999)
    assert sum(r[spec.entity.key] == "replayed" for r in _table_rows(table)) == 1

    # The CLI finds the table from DescribeFeatureGroup; --online is refused before Spark starts.
    write_events(tmp_path / "cli.jsonl", events)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "featurestream"), "backfill", "--feature-group", str(glue.spec_file),
         "--env", "local", "--from-files", str(tmp_path / "cli.jsonl"), "--format", "json",
         "--start", "2026-11-01", "--end", "2026-11-02", "--online"],
        env={**os.environ, "AWS_ENDPOINT_URL_SAGEMAKER": emulator.url}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (
        f"featurestream: config error: command line: --online: not supported for an Iceberg-format feature group "
        f"({catalog.spark_table(cfg['Database'], cfg['TableName'])}): backfill without it (the stream keeps "
        "the online store)")
    print(f"Iceberg backfill: {len(events)} events, {sum(expected.values())} rows, first run {first_s:.1f} s")


def _iceberg_group(spark: Any, emulator: EmulatorProcess, stack_env: dict[str, str], spec: Any, catalog: Any,
                   prefix: str, *, live_rows: int) -> tuple[dict[str, str], Any]:
    """The group as an Iceberg-format feature group of the emulator with `live_rows` rows of its own
    (a stream wrote them: a backfill never touches them), the session set up for its catalog; its
    DataCatalogConfig and the pyiceberg table."""
    name = spec.online_store.feature_group_name
    sm = sagemaker_client(emulator.url)
    sm.create_feature_group(
        FeatureGroupName=name, RecordIdentifierFeatureName=spec.entity.key,
        EventTimeFeatureName=spec.event_time.field, FeatureDefinitions=feature_definitions(spec),
        OnlineStoreConfig={"EnableOnlineStore": True},
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{BUCKET}/{prefix}"}, "TableFormat": "Iceberg"})
    cfg = sm.describe_feature_group(FeatureGroupName=name)["OfflineStoreConfig"]["DataCatalogConfig"]
    # A day before the backfilled events (relative to now, as they are): no calendar date to age.
    live_time = datetime.fromtimestamp(START_MS / 1000 - 86_400, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    runtime = runtime_client(emulator.url)
    for i in range(live_rows):
        runtime.put_record(FeatureGroupName=name, Record=record(card_id=f"live-{i}", event_time=live_time, n_5m=i))
    emulator.flush()
    s3a.configure_session(spark, stack_env["AWS_ENDPOINT_URL_S3"], "us-east-1", [BUCKET])
    iceberg.configure_session(spark, catalog)
    return cfg, iceberg.load_catalog(catalog).load_table((cfg["Database"], cfg["TableName"]))


def _backfill_into(spark: Any, setup: Setup, events: list[dict[str, Any]], target: str, *,
                   restart: bool = False) -> Any:
    from featurestream.backfill.job import BackfillRequest, run_backfill
    from featurestream.backfill.sources import FileSource

    source = setup.root / "events.jsonl"
    setup.root.mkdir(parents=True, exist_ok=True)
    write_events(source, events)
    start = datetime.fromtimestamp(min(e["ts_ms"] for e in events) / 1000, tz=UTC)
    end = datetime.fromtimestamp((max(e["ts_ms"] for e in events) + 1) / 1000, tz=UTC)
    request = BackfillRequest(setup.spec, str(setup.spec_file), setup.profile, FileSource(str(source), "json"),
                              start, end, 20 * 60_000, target, restart=restart)
    return run_backfill(spark, request)


def test_a_backfill_killed_with_9_resumes_into_the_iceberg_table_with_each_row_once(
        spark: Any, emulator: EmulatorProcess, stack_env: dict[str, str], tmp_path: Path) -> None:
    """`featurestream backfill` into an Iceberg-format group, killed with -9 after a finished chunk
    (and maybe inside the next one's commit), then run again: the table holds each row of one
    uninterrupted run once, all with the first run's stamp, beside the Feature Store's own rows."""
    glue = new_setup(tmp_path / "glue", "127.0.0.1:1")
    spec = glue.spec
    name = spec.online_store.feature_group_name
    profile = load_profile("local")
    _, table = _iceberg_group(spark, emulator, stack_env, spec, iceberg.from_profile(profile),
                              "backfill-iceberg-kill", live_rows=1)
    live = Counter(_key(r) for r in _table_rows(table))
    assert sum(live.values()) == 1

    cards = ("card-a", "card-b", "card-c")
    events = [event(cards[i % 3], START_MS + i * 61_000, float(i % 4) + 0.5, f"m-{i % 2}") for i in range(100)]
    backfill(spark, glue, events, timedelta(minutes=20))  # uninterrupted, in the Glue layout: the reference
    expected = Counter(_key(r) for r in offline_records(glue).values())

    source = tmp_path / "events.jsonl"
    write_events(source, events)
    start = datetime.fromtimestamp(min(e["ts_ms"] for e in events) / 1000, tz=UTC)
    end = datetime.fromtimestamp((max(e["ts_ms"] for e in events) + 1) / 1000, tz=UTC)
    args = [sys.executable, "-m", "featurestream.cli", "backfill", "--feature-group", str(glue.spec_file),
            "--env", "local", "--from-files", str(source), "--format", "json", "--start", start.isoformat(),
            "--end", end.isoformat(), "--chunk", "20m"]
    env = job_env({"AWS_ENDPOINT_URL_SAGEMAKER": emulator.url})
    progress = (Path(profile.checkpoint_root) / spec.name / "backfill" / range_id(name, start, end)
                / "progress.json")

    finished = kill_9_after_a_finished_chunk(args, env, progress, tmp_path / "first.log")
    assert finished and len(finished) < 5
    stamps = {r["api_invocation_time"] for r in _table_rows(table) if _key(r) not in live}
    assert len(stamps) == 1

    second = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, timeout=600, check=False)
    assert second.returncode == 0, second.stderr.decode()[-2000:]
    skipped = {str(json.loads(line)["chunk"]) for line in second.stderr.decode().splitlines()
               if line.startswith("{") and '"backfill_chunk"' in line and json.loads(line)["skipped"]}
    assert finished <= skipped, (finished, skipped)
    rows = _table_rows(table)
    got = Counter(_key(r) for r in rows)
    assert got == expected + live, (list(got - expected - live)[:1], list(expected + live - got)[:1])
    assert {r["api_invocation_time"] for r in rows if _key(r) not in live} == stamps  # the resumed run's own
