"""`featurestream training-set` on a SageMaker Iceberg-format group (issue 20's acceptance): the
same records put to a Glue-format group and to an Iceberg-format group of the Feature Store
emulator (the local catalog: the stack's PostgreSQL, files on its S3), joined in one build, give
the same columns, equal to a pandas as-of join of the records; rebuilt with the snapshot id its
manifest recorded, after more writes to the Iceberg group, the set is identical.

Everything runs as a user runs it: the real CLI in its own process, the groups' offline stores as
the emulator replicated them (Glue by ResolvedOutputS3Uri, Iceberg by its DataCatalogConfig table).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from featurestream.dev.feature_store import EmulatorProcess
from tests.dev.feature_store.helpers import record, runtime_client, sagemaker_client, unique_name

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
BUCKET = "featurestream-offline"  # created by the stack's S3 service
FEATURES = [{"FeatureName": "id", "FeatureType": "String"}, {"FeatureName": "ts", "FeatureType": "String"},
            {"FeatureName": "n", "FeatureType": "Integral"}, {"FeatureName": "x", "FeatureType": "Fractional"}]
BASE = datetime(2026, 11, 1, tzinfo=UTC)
ENTITIES, EVENTS_EACH, LABELS = 50, 6, 200


@pytest.fixture
def emulator(stack_env: dict[str, str], tmp_path: Path) -> Iterator[EmulatorProcess]:
    emu = EmulatorProcess(tmp_path / "state", catalog_profile="local", flush_interval_s=3600).start()
    yield emu
    emu.stop()


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _records(rng: np.random.Generator) -> pd.DataFrame:
    """Six events per entity, 10 minutes apart (no two of an entity at the same EventTime)."""
    rows = [{"id": f"k{e:02d}", "ts": BASE + timedelta(minutes=10 * j + int(rng.integers(0, 9))),
             "n": int(rng.integers(0, 1_000_000)), "x": float(rng.normal()), "deleted": False}
            for e in range(ENTITIES) for j in range(EVENTS_EACH)]
    # Soft deletes of five entities after their third event: labels after it join nothing.
    rows += [{"id": f"k{e:02d}", "ts": BASE + timedelta(minutes=25, seconds=30), "n": None, "x": None,
              "deleted": True}
             for e in range(5)]
    return pd.DataFrame(rows)


def _put(emu: EmulatorProcess, groups: list[str], records: pd.DataFrame) -> None:
    """The records to every group, in the same order: BatchWriteRecord of 25, DeleteRecord."""
    runtime = runtime_client(emu.url)
    puts = records[~records["deleted"]].to_dict("records")
    for group in groups:
        for start in range(0, len(puts), 25):
            entries = [{"FeatureGroupName": group, "Record": record(id=r["id"], ts=_iso(r["ts"]), n=int(r["n"]),
                                                                    x=r["x"])}
                       for r in puts[start:start + 25]]
            answer = runtime.batch_write_record(Entries=entries)
            assert not answer["Errors"] and not answer.get("UnprocessedEntries")
        for r in records[records["deleted"]].to_dict("records"):
            runtime.delete_record(FeatureGroupName=group, RecordIdentifierValueAsString=r["id"],
                                  EventTime=_iso(r["ts"]))
    emu.flush()


def _create(emu: EmulatorProcess) -> tuple[dict[str, Any], dict[str, Any]]:
    sm = sagemaker_client(emu.url)
    described = []
    for table_format, prefix in (("Glue", "glue"), ("Iceberg", "ice")):
        name = unique_name(prefix)
        sm.create_feature_group(
            FeatureGroupName=name, RecordIdentifierFeatureName="id", EventTimeFeatureName="ts",
            FeatureDefinitions=FEATURES, OnlineStoreConfig={"EnableOnlineStore": True},
            OfflineStoreConfig={"S3StorageConfig": {"S3Uri": f"s3://{BUCKET}/training-cli"},
                                "TableFormat": table_format})
        described.append(dict(sm.describe_feature_group(FeatureGroupName=name)))
    return described[0], described[1]


def _as_of(records: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Independent of the build: per label, the entity's newest record at or before the label time
    (the newest write of an EventTime wins); a delete there means no values."""
    newest = records.sort_values(["ts", "order"], kind="stable").drop_duplicates(["id", "ts"], keep="last")
    joined = pd.merge_asof(labels.sort_values("label_time"), newest.sort_values("ts"), left_on="label_time",
                           right_on="ts", by="id", direction="backward")
    joined.loc[joined["deleted"].fillna(False).astype(bool), ["n", "x"]] = None
    return (joined[["label_id", "n", "x"]].sort_values("label_id").reset_index(drop=True)
            .astype({"n": "Int64", "x": "float64"}))


def _build(tmp_path: Path, name: str, groups: list[dict[str, Any]], labels: Path) -> tuple[pd.DataFrame,
                                                                                             dict[str, Any], float]:
    """`featurestream training-set` in its own process; (its rows by label_id, manifest, seconds)."""
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({
        "labels": {"path": str(labels), "timestamp_column": "label_time"},
        "feature_groups": [{"keys": {"id": "id"}, "event_time_column": "ts", "features": ["n", "x"],
                            "include_event_time": False, **group} for group in groups],
        "output": {"path": str(tmp_path / name)},
    }))
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
           "SPARK_LOCAL_IP": "127.0.0.1"}
    started = time.monotonic()
    done = subprocess.run([str(VENV_BIN / "featurestream"), "training-set", "--config", str(config), "--env", "local",
                           "--no-progress", "--no-sagemaker-lineage"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    columns = ["label_id", "g_n", "g_x", "i_n", "i_x"]
    rows = (pd.read_parquet(Path(result["path"]) / "data")[columns].sort_values("label_id").reset_index(drop=True)
            .astype({"g_n": "Int64", "i_n": "Int64", "g_x": "float64", "i_x": "float64"}))
    return rows, json.loads(Path(result["manifest"]).read_text()), seconds


def _side(rows: pd.DataFrame, prefix: str) -> pd.DataFrame:
    return rows[["label_id", f"{prefix}n", f"{prefix}x"]].rename(columns={f"{prefix}n": "n", f"{prefix}x": "x"})


def test_an_iceberg_group_builds_the_glue_groups_set_and_a_pinned_rebuild_is_identical(
        emulator: EmulatorProcess, tmp_path: Path) -> None:
    rng = np.random.default_rng(20)
    records = _records(rng)
    records["order"] = 0
    glue, ice = _create(emulator)
    _put(emulator, [glue["FeatureGroupName"], ice["FeatureGroupName"]], records)

    labels = pd.DataFrame({"label_id": np.arange(LABELS, dtype=np.int64),
                           "id": [f"k{e:02d}" for e in rng.integers(0, ENTITIES + 2, LABELS)],  # 2 unknown ids
                           "label_time": [BASE + timedelta(seconds=int(s)) for s in rng.integers(-600, 4200, LABELS)]})
    labels_dir = tmp_path / "labels"
    labels_dir.mkdir()
    schema = pa.schema([("label_id", pa.int64()), ("id", pa.string()), ("label_time", pa.timestamp("us", tz="UTC"))])
    pq.write_table(pa.Table.from_pandas(labels, schema=schema, preserve_index=False), labels_dir / "part-0.parquet")

    glue_uri = glue["OfflineStoreConfig"]["S3StorageConfig"]["ResolvedOutputS3Uri"]
    catalog = ice["OfflineStoreConfig"]["DataCatalogConfig"]
    table = f"{catalog['Database']}.{catalog['TableName']}"
    # One build joins both groups (prefixes g_ and i_): the Glue one by path, the Iceberg one by its table.
    groups = [{"name": "glue", "path": glue_uri, "prefix": "g_"}, {"name": "ice", "table": table, "prefix": "i_"}]
    first, manifest, first_s = _build(tmp_path, "first", groups, labels_dir)

    expected = _as_of(records, labels)
    pd.testing.assert_frame_equal(_side(first, "g_"), expected)
    pd.testing.assert_frame_equal(_side(first, "i_"), _side(first, "g_"))
    assert expected["n"].notna().sum() > 100 and expected["n"].isna().sum() > 10  # values and no-values both
    pinned = next(g for g in manifest["inputs"]["feature_groups"] if g["name"] == "ice")
    assert pinned["table"].endswith(table) and pinned["format"] == "iceberg"

    # More writes to the Iceberg group: later versions of a third of the records (same EventTime).
    later = records[~records["deleted"]].iloc[::3].assign(n=lambda f: f["n"] + 7, order=1)
    _put(emulator, [ice["FeatureGroupName"]], later)
    changed = _as_of(pd.concat([records, later]), labels)
    assert not changed.equals(expected)  # the new writes matter to this label set

    groups[1]["snapshot_id"] = pinned["snapshot_id"]
    rebuilt, again, pinned_s = _build(tmp_path, "pinned", groups, labels_dir)
    pd.testing.assert_frame_equal(rebuilt, first)
    assert next(g for g in again["inputs"]["feature_groups"] if g["name"] == "ice")["snapshot_id"] == \
        pinned["snapshot_id"]
    print(f"training-set CLI: first build {first_s:.1f} s, pinned rebuild {pinned_s:.1f} s; "
          f"{len(records)} records, {LABELS} labels")
