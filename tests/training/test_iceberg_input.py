"""Feature groups read from Apache Iceberg tables (by catalog name and by location), pinned to the
snapshot the manifest records: the build equals DuckDB's ASOF JOIN, and a rebuild with those
snapshot ids is identical after more rows were committed to the tables.

The tables are written by pyiceberg, not by our code: the reader under test is the only
featurestream code that touches them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from featurestream import iceberg
from featurestream.config import load_profile
from featurestream.config.training_set import TrainingSetSpec
from featurestream.training.build import build_training_set
from tests.training import data
from tests.training.conftest import Loaded
from tests.training.expected import ALL_GROUPS, output_columns
from tests.training.oracle import Oracle

pytestmark = pytest.mark.integration


def _arrow(frame: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    schema = pa.schema([f.with_type(pa.timestamp("us", tz="UTC")) if pa.types.is_timestamp(f.type) else f
                        for f in table.schema])
    return table.cast(schema)


def _later_writes(frame: pd.DataFrame) -> pd.DataFrame:
    """Newer versions (same key and EventTime, later write, other values) of a third of the rows."""
    later = frame.iloc[::3].copy()
    later["write_time"] = later["write_time"] + pd.Timedelta(milliseconds=1)
    later["txn_count_5m"] = later["txn_count_5m"] + 1000
    return later


def test_iceberg_groups_by_name_and_location_pinned_to_a_snapshot(spark: Any, loaded: Loaded, tmp_path: Path) -> None:
    catalog = iceberg.from_profile(load_profile("local"))
    iceberg.configure_session(spark, catalog)
    client = iceberg.load_catalog(catalog)
    namespace = f"training_{uuid.uuid4().hex[:8]}"
    client.create_namespace(namespace)
    tables = {}
    for name, frame in loaded.scenario.groups.items():
        arrow = _arrow(frame)
        tables[name] = client.create_table(f"{namespace}.{name}", schema=arrow.schema,
                                           location=str(tmp_path / "tables" / name))
        tables[name].append(arrow)

    def spec(out: Path, pins: dict[str, int] | None = None) -> TrainingSetSpec:
        config = loaded.spec(output={"path": str(out)})
        for group in config["feature_groups"]:
            name = group.pop("name")
            group.pop("path")
            group["name"] = name
            if name == "merchant_risk":  # by location: the table's folder, no catalog involved
                group["path"] = str(tmp_path / "tables" / name)
            else:
                group["table"] = f"{namespace}.{name}"
            if pins:
                group["snapshot_id"] = pins[name]
        return TrainingSetSpec.model_validate(config)

    first = build_training_set(spark, spec(tmp_path / "first"), source="test", catalog=catalog.name)
    manifest = json.loads(Path(first.manifest_path).read_text())
    pins = {g["name"]: g["snapshot_id"] for g in manifest["inputs"]["feature_groups"]}
    assert pins == {name: t.current_snapshot().snapshot_id for name, t in tables.items()}
    ours = pd.read_parquet(tmp_path / "first" / "data")
    columns = output_columns(ALL_GROUPS)
    expected = Oracle(loaded.scenario.labels, loaded.scenario.groups).expected(ALL_GROUPS)
    pd.testing.assert_frame_equal(data.normalise(ours, columns), data.normalise(expected, columns))

    # More rows committed: they change the answer, but not a rebuild pinned to the recorded snapshots.
    later = _later_writes(loaded.scenario.groups["card_activity"])
    tables["card_activity"].append(_arrow(later))
    newer = {**loaded.scenario.groups, "card_activity": pd.concat([loaded.scenario.groups["card_activity"], later])}
    changed = Oracle(loaded.scenario.labels, newer).expected(ALL_GROUPS)
    assert not data.normalise(changed, columns).equals(data.normalise(expected, columns))
    again = build_training_set(spark, spec(tmp_path / "again", pins), source="test", catalog=catalog.name)
    rebuilt = pd.read_parquet(tmp_path / "again" / "data")
    pd.testing.assert_frame_equal(data.normalise(rebuilt, columns), data.normalise(ours, columns))
    assert json.loads(Path(again.manifest_path).read_text())["inputs"]["feature_groups"][0]["snapshot_id"] == \
        pins["card_activity"]
