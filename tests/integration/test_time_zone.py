"""Every job gives the same answer whatever the machine's time zone.

The real CLI (`featurestream ...` subprocesses, plus one `spark-submit`) runs under
TZ=America/New_York on one shared setup, and its outputs are compared row for row with an
independent computation (pandas, DuckDB) and, where no oracle covers every column, with the same
job under TZ=UTC:

- training-set: labels from PostgreSQL, once from a `timestamp without time zone` column holding
  UTC values (read partitioned on that column, by spark-submit, whose driver JVM starts in New
  York's zone before our code runs: the harder of the two launches, as the CLI launches its JVM
  with -Duser.timezone=UTC and then sets the same default at run time) and once from `timestamptz`
  by the CLI, each against pandas' merge_asof;
- stream --available-now under both zones: the online records (GetRecord, also against the event
  oracle) and every offline row it wrote;
- compact under New York: the compacted Parquet against the DuckDB oracle.

Runs whose only check would repeat an oracle comparison under UTC are left out: each JVM costs
this 2-core CI a few seconds of every other job's time.

All times straddle a US DST switch and New York's midnight (the local date differs), so an
offset of 4 or 5 hours, or a wrong date partition, cannot hide. Labels sit on 2026-03-08 and 2026-11-01 (no clock
involved); the stream's events sit on the latest DST switch before now, because the online store
expires records a TTL after their EventTime.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml

from featurestream.config import load_feature_group, load_profile
from featurestream.connectors.provisioning import ensure_feature_group
from featurestream.dev.feature_store import EmulatorProcess
from featurestream.dev.generator import GeneratorSettings, encode, ensure_topic, generate_events, produce_kafka
from featurestream.io.jars import spark_jars
from tests.compaction import oracle
from tests.compaction.data import local_files
from tests.emulators import running_emulator
from tests.ops.job import ROOT, job_env
from tests.ops.online import compare_online
from tests.training import data, pg

pytestmark = pytest.mark.integration
VENV_BIN = Path(sys.executable).parent
NEW_YORK, UTC_ZONE = "America/New_York", "UTC"
ZONES = (NEW_YORK, UTC_ZONE)
TTL = pd.Timedelta(hours=2)
# The two US switches of 2026: 07:00 UTC on 2026-03-08 (EST→EDT), 06:00 UTC on 2026-11-01 (EDT→EST).
LABEL_DAYS = (pd.Timestamp("2026-03-08T00:00:00Z"), pd.Timestamp("2026-11-01T00:00:00Z"))
CARDS = ("c0", "c1", "c2")
# Events from 3 h before a DST switch (an hour before New York's midnight) to 1 h after it.
STREAM_EVENTS, STREAM_SPAN_H, STREAM_BEFORE_H = 720, 4, 3
# name -> (label time column type, TZ, through spark-submit)
TRAINING_RUNS = {
    "ntz-new-york-spark-submit": ("ntz", NEW_YORK, True),
    "tz-new-york": ("tz", NEW_YORK, False),
}


# ----------------------------------------------------------------------------- shared setup


def training_data() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(labels, features): features every 20 min per card over 00:00-12:00 UTC of each switch day,
    value `v` unique per row; labels every 10 min over 00:00-14:00 (every other one equals a feature
    EventTime: the <= rule; the last ones are past the TTL), plus one label before `start` that the
    SQL must drop."""
    rng = np.random.default_rng(7)
    features, labels = [], []
    for day in LABEL_DAYS:
        for card in CARDS:
            for minute in range(0, 12 * 60, 20):
                features.append({"card_id": card, "event_time": day + pd.Timedelta(minutes=minute)})
            for minute in range(0, 14 * 60, 10):
                labels.append({"card_id": card, "label_time": day + pd.Timedelta(minutes=minute)})
    feature_frame = pd.DataFrame(features)
    feature_frame["v"] = np.arange(len(feature_frame), dtype=np.int64) * 10 + 1
    feature_frame["write_time"] = feature_frame["event_time"] + pd.Timedelta(seconds=1)
    feature_frame["api_invocation_time"] = feature_frame["write_time"]
    feature_frame["is_deleted"] = False
    feature_frame["event_date"] = feature_frame["event_time"].dt.strftime("%Y-%m-%d")
    label_frame = pd.DataFrame(labels)
    early = pd.DataFrame({"card_id": ["c0"], "label_time": [LABEL_DAYS[0] - pd.Timedelta(minutes=10)]})
    label_frame = pd.concat([early, label_frame], ignore_index=True)
    label_frame.insert(0, "label_id", np.arange(len(label_frame), dtype=np.int64))
    label_frame["is_fraud"] = (rng.random(len(label_frame)) < 0.2).astype(np.int32)
    return label_frame, feature_frame


def expected_training_set(labels: pd.DataFrame, features: pd.DataFrame) -> pd.DataFrame:
    """As of each label time (EventTime <= t, within the TTL), by pandas merge_asof."""
    kept = labels[labels["label_time"] >= LABEL_DAYS[0]].sort_values("label_time")
    right = features[["card_id", "event_time", "v"]].sort_values("event_time")
    joined = pd.merge_asof(kept, right, left_on="label_time", right_on="event_time", by="card_id",
                           direction="backward", allow_exact_matches=True)
    stale = joined["event_time"].isna() | (joined["label_time"] - joined["event_time"] > TTL)
    joined.loc[stale, ["event_time", "v"]] = None
    return normalise_training(joined.rename(columns={"event_time": "card_activity_event_time"}))


def normalise_training(frame: pd.DataFrame) -> pd.DataFrame:
    """Times as UTC epoch microseconds (whatever the Parquet type), sorted by label_id."""
    out = frame[["label_id", "card_id", "label_time", "is_fraud", "v", "card_activity_event_time"]].copy()
    for column in ("label_time", "card_activity_event_time"):
        stamps = pd.to_datetime(out[column], utc=True)
        out[column] = (stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1)
        out[column] = out[column].astype("Int64")
    out["v"] = out["v"].astype("Int64")
    out["is_fraud"] = out["is_fraud"].astype("int64")
    return out.sort_values("label_id").reset_index(drop=True)


def last_dst_switch(before: datetime) -> datetime:
    """The latest hour at which New York's UTC offset changed, before `before`."""
    zone = ZoneInfo(NEW_YORK)
    moment = before.replace(minute=0, second=0, microsecond=0)
    offset = moment.astimezone(zone).utcoffset()
    while (moment - timedelta(hours=1)).astimezone(zone).utcoffset() == offset:
        moment -= timedelta(hours=1)
    return moment


@dataclass
class Job:
    """One CLI process under one TZ; output in files, so parallel jobs never block on a pipe."""

    name: str
    zone: str
    args: list[str]
    logs: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    rc: int | None = None
    seconds: float = 0.0
    _started: float = 0.0

    def start(self) -> Job:
        self.logs.mkdir(parents=True, exist_ok=True)
        self._started = time.monotonic()
        with (self.logs / "stdout.log").open("wb") as out, (self.logs / "stderr.log").open("wb") as err:
            # Its own process group, so that kill() takes the JVM and the Python workers along.
            # Five short driver JVMs at once on 2 cores: the C1 compiler alone and the serial
            # collector (JVM options only) took the setup from 106 to 61 s in two clean CI runs.
            env = {"SPARK_SUBMIT_OPTS": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC", **self.env, "TZ": self.zone}
            self.proc = subprocess.Popen(self.args, cwd=ROOT, env=env, stdout=out,
                                         stderr=err, start_new_session=True)
        return self

    def wait(self, timeout: float) -> Job:
        if self.proc is None or self.rc is not None:
            return self
        try:
            self.rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        self.seconds = time.monotonic() - self._started
        return self

    def kill(self) -> None:
        """The whole process group (the JVM and Python workers too), if still running."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.rc = self.proc.wait(timeout=60)

    def failure(self) -> str:
        tail = (self.logs / "stderr.log").read_text(errors="replace")[-3000:]
        return f"{self.name} exited {self.rc} after {self.seconds:.0f} s:\n{tail}"


def wait_all(jobs: list[Job], deadline: float) -> None:
    for job in jobs:
        job.wait(max(1.0, deadline - time.monotonic()))


@dataclass
class Setup:
    root: Path
    labels: pd.DataFrame
    expected: pd.DataFrame
    emulator: EmulatorProcess
    events: list[dict[str, Any]]
    groups: dict[str, Any]  # zone -> FeatureGroupSpec of the stream run under that zone
    jobs: dict[str, Job] = field(default_factory=dict)

    def training(self, name: str) -> pd.DataFrame:
        return normalise_training(pd.read_parquet(self.root / "sets" / name / "data"))


def training_config(root: Path, name: str, table: str, partitioning: dict[str, Any], features: str) -> Path:
    path = root / "conf" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({
        "labels": {"jdbc": {"url": "${FEATURESTREAM_JDBC_URL}", "password_file": "${FEATURESTREAM_JDBC_PASSWORD_FILE}"},
                   "table": table, "timestamp_column": "label_time", "label_columns": ["is_fraud"],
                   "start": LABEL_DAYS[0].isoformat(), "partitioning": partitioning},
        "feature_groups": [{"name": "card_activity", "path": features, "keys": {"card_id": "card_id"},
                            "features": ["v"], "ttl": "2h"}],
        "output": {"path": str(root / "sets" / name)},
    }))
    return path


def stream_files(root: Path, zone: str, bootstrap: str, topic: str, suffix: str, ttl_days: int,
                 emulator: EmulatorProcess) -> tuple[Path, Path, Any]:
    """A feature group and a profile of its own per zone (own checkpoints, own online group)."""
    tag = "ny" if zone == NEW_YORK else "utc"
    work = root / f"stream-{tag}"
    work.mkdir(parents=True)
    group = yaml.safe_load((ROOT / "conf/feature_groups/card_activity.yaml").read_text())
    group["source"]["topic"] = topic
    group["online_store"] = {"feature_group_name": f"tz-{tag}-{suffix}", "ttl": f"{ttl_days}d"}
    group_file = work / "card_activity.yaml"
    group_file.write_text(yaml.safe_dump(group))
    profile_file = work / "profile.yaml"
    profile_file.write_text(yaml.safe_dump({
        "kind": "local",
        # Three batches: records (the latest per entity and batch) spread over the span.
        "kafka": {"bootstrap_servers": bootstrap, "max_offsets_per_trigger": 240},
        "feature_store": {"region": "us-east-1", "offline_store_s3_uri": f"s3://featurestream-offline/tz-{suffix}",
                          "role_arn": "arn:aws:iam::123456789012:role/featurestream-local"},
        "spark": {"master": "local[2]", "shuffle_partitions": 2, "trigger_interval": "2 seconds"},
        "checkpoint_root": str(work / "checkpoints"), "dlq_path": str(work / "dlq"),
        "metrics": {"port": 0}, "lineage": {"file": str(work / "lineage.jsonl")},
    }))
    spec = load_feature_group(group_file)
    ensure_feature_group(boto3.client("sagemaker", endpoint_url=emulator.url), spec, load_profile(profile_file))
    return group_file, profile_file, spec


@pytest.fixture(scope="module")
def setup(stack_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("time-zone")
    suffix = uuid.uuid4().hex[:8]

    # Stream: one topic of events over the latest DST switch, read by one job per zone.
    switch = last_dst_switch(datetime.now(UTC) - timedelta(hours=STREAM_SPAN_H))
    start = switch - timedelta(hours=STREAM_BEFORE_H)
    ttl_days = math.ceil((datetime.now(UTC) - start) / timedelta(days=1)) + 7
    settings = GeneratorSettings(entities=30, seed=21, events_per_second=STREAM_EVENTS / (STREAM_SPAN_H * 3600),
                                 start=start)
    events = generate_events(STREAM_EVENTS, settings)
    bootstrap = stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"]
    topic = f"tz-{suffix}"
    ensure_topic(bootstrap, topic, partitions=2)
    produce_kafka(list(encode(events, settings)), bootstrap, topic)

    # Training: the same UTC values in a `timestamp` and a `timestamptz` table, features as Parquet.
    labels, features = training_data()
    feature_path = data.write_compacted(features, root / "features" / "card_activity")
    tables = {"ntz": f"fs_tz_labels_ntz_{suffix}", "tz": f"fs_tz_labels_tz_{suffix}"}
    by_time = {"column": "label_time", "num_partitions": 3}
    configs = {name: training_config(root, name, tables[kind], by_time if kind == "ntz" else {}, feature_path)
               for name, (kind, _, _) in TRAINING_RUNS.items()}
    jobs: dict[str, Job] = {}
    try:
        naive = labels.assign(label_time=labels["label_time"].dt.tz_convert("UTC").dt.tz_localize(None))
        # No primary key: the reader partitions on the timestamp column (bounds, predicates) itself.
        pg.load_frame(tables["ntz"], "label_id bigint, card_id text, label_time timestamp without time zone, "
                      "is_fraud integer", naive)
        pg.load_frame(tables["tz"], "label_id bigint PRIMARY KEY, card_id text, label_time timestamptz, "
                      "is_fraud integer", labels)
        with running_emulator(root / "emulator") as emulator:
            env = job_env({"AWS_ENDPOINT_URL_SAGEMAKER": emulator.url,
                           "AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME": emulator.url})
            cli = str(VENV_BIN / "featurestream")
            groups = {}
            for zone in ZONES:
                group_file, profile_file, groups[zone] = stream_files(root, zone, bootstrap, topic, suffix, ttl_days,
                                                                      emulator)
                jobs[f"stream {zone}"] = Job(f"stream {zone}", zone, [
                    cli, "stream", "--feature-group", str(group_file), "--env", str(profile_file), "--available-now"],
                    root / "logs" / f"stream-{zone.replace('/', '_')}", env)
            for name, (_, zone, submit) in TRAINING_RUNS.items():
                # spark-submit starts the driver's JVM before the job's code runs (as on a cluster).
                launcher = ([str(VENV_BIN / "spark-submit"), "--master", "local[2]", "--jars", ",".join(spark_jars()),
                             "jobs/build_training_set.py"] if submit else [cli, "training-set"])
                jobs[name] = Job(name, zone, [*launcher, "--config", str(configs[name]), "--no-progress"],
                                 root / "logs" / name, env)
            deadline = time.monotonic() + 600
            for job in jobs.values():
                job.start()
            wait_all([jobs[f"stream {zone}"] for zone in ZONES], deadline)

            # While the training sets build: the offline store the UTC run wrote, compacted under
            # New York's zone.
            emulator.flush()
            config = root / "compaction-ny.yaml"
            config.write_text(yaml.safe_dump({
                "region": "us-east-1", "output": str(root / "compacted-ny"),
                "offline_local_root": str(emulator.options["offline_local_dir"]), "partition_by": "hour",
                "target_file_size": "1MB",
                "feature_groups": [{"name": groups[UTC_ZONE].online_store.feature_group_name}],
                "spark": {"master": "local[2]", "shuffle_partitions": 2},
            }))
            jobs["compact"] = Job("compact", NEW_YORK, [
                cli, "compact", "--config", str(config), "--progress", "never"],
                root / "logs" / "compact-ny", env).start()
            wait_all(list(jobs.values()), deadline)
            yield Setup(root, labels, expected_training_set(labels, features), emulator, events, groups, jobs)
    finally:
        for job in jobs.values():
            job.kill()
        for table in tables.values():
            pg.psql(f"DROP TABLE IF EXISTS {table}")


def differences(got: pd.DataFrame, want: pd.DataFrame) -> dict[str, int]:
    """Rows whose value differs, per column (nulls equal to nulls)."""
    assert list(got["label_id"]) == list(want["label_id"]), (len(got), len(want))
    out = {}
    for column in want.columns:
        same = (got[column] == want[column]).fillna(False) | (got[column].isna() & want[column].isna())
        if (~same).sum():
            out[column] = int((~same).sum())
    return out


# ----------------------------------------------------------------------------- training set


def test_training_sets_are_the_same_in_every_zone_and_as_expected(setup: Setup) -> None:
    for name in TRAINING_RUNS:
        assert setup.jobs[name].rc == 0, setup.jobs[name].failure()
    assert len(setup.expected) == len(setup.labels) - 1  # the label before `start` is not read
    built = {name: setup.training(name) for name in TRAINING_RUNS}
    found = {f"{name} vs expected": differences(frame, setup.expected) for name, frame in built.items()}
    assert found == {key: {} for key in found}, found


# ----------------------------------------------------------------------------- stream and compaction


def offline_source(setup: Setup, zone: str) -> Path:
    name = setup.groups[zone].online_store.feature_group_name
    described = boto3.client("sagemaker", endpoint_url=setup.emulator.url).describe_feature_group(
        FeatureGroupName=name)
    uri = described["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    return Path(setup.emulator.options["offline_local_dir"]) / uri.removeprefix("s3://")


def offline_rows(source: Path) -> list[tuple[Any, ...]]:
    """Every version the job wrote, without the times the store stamps on arrival."""
    listing = ", ".join(f"'{f}'" for f in local_files(source))
    con = duckdb.connect()
    return sorted(con.execute(
        "SELECT * EXCLUDE (write_time, api_invocation_time) "
        f"FROM read_parquet([{listing}], hive_partitioning = false)").fetchall(), key=repr)


def test_stream_writes_the_same_records_in_every_zone(setup: Setup) -> None:
    for zone in ZONES:
        assert setup.jobs[f"stream {zone}"].rc == 0, setup.jobs[f"stream {zone}"].failure()
    times = pd.to_datetime([str(e["event_time"]) for e in setup.events], utc=True)
    assert times.min().tz_convert(NEW_YORK).utcoffset() != times.max().tz_convert(NEW_YORK).utcoffset()
    runtime = boto3.client("sagemaker-featurestore-runtime", endpoint_url=setup.emulator.url)
    online: dict[str, dict[str, dict[str, str]]] = {}
    for zone in ZONES:
        spec = setup.groups[zone]
        expected, missing, wrong = compare_online(spec, setup.events, endpoint=setup.emulator.url)
        assert expected == 30 and missing == [] and wrong == [], (zone, missing, wrong[:2])
        online[zone] = {}
        for card in sorted({str(e["card_id"]) for e in setup.events}):
            got = runtime.get_record(FeatureGroupName=spec.online_store.feature_group_name,
                                     RecordIdentifierValueAsString=card)
            online[zone][card] = {f["FeatureName"]: f["ValueAsString"] for f in got.get("Record", [])}
    assert online[NEW_YORK] == online[UTC_ZONE]
    new_york, utc = offline_rows(offline_source(setup, NEW_YORK)), offline_rows(offline_source(setup, UTC_ZONE))
    assert len(utc) > 30 and new_york == utc, (len(new_york), len(utc))


def test_compaction_under_new_york_equals_the_oracle(setup: Setup) -> None:
    source = offline_source(setup, UTC_ZONE)
    columns, expected = oracle.expected(local_files(source), record_id="card_id", event_time="event_time",
                                        partition_by="hour")
    job = setup.jobs["compact"]
    assert job.rc == 0, job.failure()
    (location,) = oracle.table_folders(setup.root / "compacted-ny")
    got = oracle.compacted(oracle.table_at(location), columns)
    # Rows on both sides of New York's midnight: a partition taken from the local date would show.
    times = pd.DatetimeIndex(pd.to_datetime([row[columns.index("event_time")] for row in expected], utc=True))
    local_dates = times.tz_convert(NEW_YORK).strftime("%Y-%m-%d")
    assert (local_dates != times.strftime("%Y-%m-%d")).any() and (local_dates == times.strftime("%Y-%m-%d")).any()
    assert got == expected, (len(got), len(expected), len(set(got) ^ set(expected)))
