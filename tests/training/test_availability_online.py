"""Availability mode returns what GetRecord returned, write by write, on the emulator's own data.

A random sequence of PutRecord and (soft) DeleteRecord calls over a few records, with EventTimes
drawn from a small set (so equal EventTimes collide all the time; one lies in the future, a
producer clock ahead) goes to the Feature Store emulator over HTTP. After every write, GetRecord
on the touched record and on one other is the expected answer. The offline store the emulator
wrote (several flushes, so write_time collides within a file and differs between files) is then
joined by the training-set build in availability mode, one label row per sample at that write's
api_invocation_time, and every row must hold exactly the value GetRecord returned (or null).

Each write's value `n` is its position in the sequence, so a wrong winner cannot hide. AWS stores
api_invocation_time in milliseconds: writes of one record within the same millisecond cannot be
ordered from the offline store, so consecutive calls here are at least a millisecond apart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestream.config.training_set import TrainingSetSpec
from featurestream.dev.feature_store import EmulatorProcess
from featurestream.training.build import build_training_set
from tests.dev.feature_store.helpers import as_dict, record, runtime_client, sagemaker_client
from tests.emulators import running_emulator

GROUP = "availability-writes"
IDS = ["r0", "r1", "r2", "r3"]
EVENT_TIMES = ["2026-01-01T10:00:00Z", "2026-01-01T10:00:00.500Z", "2026-01-01T11:00:00Z",
               "2026-01-02T00:00:00Z", "2099-01-01T00:00:00Z"]
WRITES = 240


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    with running_emulator(tmp_path_factory.mktemp("availability-emulator")) as emu:
        yield emu


def _after_a_millisecond(since: float) -> None:
    # The next call's api_invocation_time must fall in a later millisecond than the last one's.
    while time.time() < since + 0.0015:
        time.sleep(0.0005)


def _drive(emu: EmulatorProcess) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Send the writes; return the GetRecord samples (write index, id, value or None) and Describe."""
    sm, rt = sagemaker_client(emu.url), runtime_client(emu.url)
    sm.create_feature_group(
        FeatureGroupName=GROUP, RecordIdentifierFeatureName="id", EventTimeFeatureName="ts",
        FeatureDefinitions=[{"FeatureName": "id", "FeatureType": "String"},
                            {"FeatureName": "ts", "FeatureType": "String"},
                            {"FeatureName": "n", "FeatureType": "Integral"}],
        OnlineStoreConfig={"EnableOnlineStore": True},
        OfflineStoreConfig={"S3StorageConfig": {"S3Uri": "s3://offline-bucket/availability"}})
    rng = np.random.default_rng(17)
    samples: list[dict[str, Any]] = []
    last = 0.0
    for n in range(WRITES):
        rid = IDS[rng.integers(len(IDS))]
        event_time = EVENT_TIMES[rng.integers(len(EVENT_TIMES))]
        _after_a_millisecond(last)
        if rng.random() < 0.3:
            rt.delete_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString=rid, EventTime=event_time)
        else:
            rt.put_record(FeatureGroupName=GROUP, Record=record(id=rid, ts=event_time, n=n))
        last = time.time()
        for sampled in {rid, IDS[rng.integers(len(IDS))]}:
            got = rt.get_record(FeatureGroupName=GROUP, RecordIdentifierValueAsString=sampled).get("Record")
            samples.append({"write": n, "id": sampled, "online_n": int(as_dict(got)["n"]) if got else None})
        if n % 60 == 59:
            emu.flush()  # write_time: one per flush, shared by every row of the file
    emu.flush()
    return samples, dict(sm.describe_feature_group(FeatureGroupName=GROUP))


def test_availability_mode_equals_get_record_write_by_write(spark: Any, emulator: EmulatorProcess,
                                                             tmp_path: Path) -> None:
    samples, describe = _drive(emulator)
    uri = describe["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    offline = Path(emulator.options["offline_local_dir"]) / uri.removeprefix("s3://")
    rows = pq.ParquetDataset(offline).read().to_pandas()
    assert len(rows) == WRITES  # one row per write: puts, and soft deletes (stale ones too)
    rows = rows.sort_values("api_invocation_time").reset_index(drop=True)
    api = rows["api_invocation_time"]
    assert api.is_monotonic_increasing and api.is_unique
    assert rows["write_time"].nunique() == WRITES // 60  # write times collide within each flush
    # Writes are numbered by their order of API call: the k-th row is write k (puts carry n = k).
    puts = rows[~rows["is_deleted"]]
    assert (puts["n"].to_numpy() == puts.index.to_numpy()).all()
    equal_times = rows.duplicated(["id", "ts"]).sum()
    assert equal_times > 100, "the sequence must collide on EventTime"

    labels = pd.DataFrame(samples)
    labels["label_id"] = np.arange(len(labels), dtype=np.int64)
    labels["label_time"] = api.iloc[labels["write"]].to_numpy()
    table = pa.Table.from_pandas(labels[["label_id", "id", "label_time"]], preserve_index=False)
    (tmp_path / "labels").mkdir()
    pq.write_table(table.cast(pa.schema([pa.field("label_id", pa.int64()), pa.field("id", pa.string()),
                                         pa.field("label_time", pa.timestamp("us", tz="UTC"))])),
                   tmp_path / "labels" / "part-0.parquet")
    spec = TrainingSetSpec.model_validate({
        "name": "availability_writes",
        "labels": {"path": str(tmp_path / "labels"), "timestamp_column": "label_time"},
        "feature_groups": [{"name": "writes", "path": str(offline), "keys": {"id": "id"},
                            "event_time_column": "ts", "features": ["n"], "date_partition_column": None}],
        "join": {"availability": True},
        "output": {"path": str(tmp_path / "out")},
    })
    started = time.monotonic()
    build_training_set(spark, spec, source="test")
    out = pd.read_parquet(tmp_path / "out" / "data").sort_values("label_id").reset_index(drop=True)
    print(f"availability build: {time.monotonic() - started:.1f} s, {len(out)} label rows")

    got = out["n"].astype("Int64")
    want = labels.sort_values("label_id")["online_n"].astype("Int64").reset_index(drop=True)
    wrong = out[(got.fillna(-1) != want.fillna(-1)).to_numpy()]
    assert wrong.empty, (f"{len(wrong)} of {len(out)} label rows differ from GetRecord, e.g. "
                         f"{wrong.head(5).assign(online=want[wrong.index[:5]].to_numpy()).to_dict('records')}")
    assert want.isna().sum() > 20 and want.notna().sum() > 100  # deletes and values both decided
    assert datetime.now(UTC).year < 2099  # the future EventTime really is one
