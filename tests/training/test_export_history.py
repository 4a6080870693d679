"""`--export-history` against the stack's PostgreSQL: incremental by updated_at, the watermark is
remembered, nothing is lost or duplicated across runs, a crashed run is redone into the same folder,
and rows newer than the safety lag wait for the next run."""

from __future__ import annotations

import io
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from featurestream.config.training_set import ExportHistorySpec, LabelsSpec
from featurestream.training.history import export_history
from tests.training import data, pg

pytestmark = pytest.mark.integration
DDL = "id bigint PRIMARY KEY, card_id text, label_time timestamptz, is_fraud integer, updated_at timestamptz"


@pytest.fixture()
def history_table(stack_env: dict[str, str]) -> Any:
    table = f"fs_test_history_{os.getpid()}"
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({
        "id": np.arange(50, dtype=np.int64),
        "card_id": [f"card-{i % 7}" for i in range(50)],
        "label_time": data.BASE + pd.to_timedelta(np.arange(50), unit="h"),
        "is_fraud": rng.integers(0, 2, 50).astype(np.int32),
        "updated_at": data.BASE + pd.to_timedelta(np.arange(50) * 10 + 5, unit="m"),
    })
    pg.load_frame(table, DDL, frame)
    yield table, frame
    pg.psql(f"DROP TABLE IF EXISTS {table}")


def _exported(root: Path) -> pd.DataFrame:
    frames = [pd.read_parquet(folder) for folder in sorted(root.glob("run=*"))]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _latest(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.sort_values("updated_at").groupby("id").tail(1).sort_values("id").reset_index(drop=True)
    return data.to_micros(out[["id", "card_id", "is_fraud", "updated_at"]])


def test_incremental_export_remembers_its_watermark(spark: Any, history_table: Any, tmp_path: Path) -> None:
    table, frame = history_table
    labels = LabelsSpec.model_validate({"jdbc": {"url": pg.jdbc_url()}, "table": table,
                                        "timestamp_column": "label_time"})
    spec = ExportHistorySpec(path=str(tmp_path / "history"), updated_at_column="updated_at")
    first = export_history(spark, labels, spec, source="test")
    assert first.rows == 50 and first.upper == frame["updated_at"].max().to_pydatetime()
    state = json.loads((tmp_path / "history" / "_export_state.json").read_text())
    assert state["watermark"] == first.upper.isoformat() and state["pending"] is None
    assert state["runs"][0]["rows"] == 50 and state["runs"][0]["partitioning"]["column"] == "id"

    nothing = export_history(spark, labels, spec, source="test")
    assert nothing.rows == 0 and nothing.run_id is None

    newest = frame["updated_at"].max()
    pg.psql(f"UPDATE {table} SET is_fraud = 1 - is_fraud, updated_at = '{(newest + timedelta(hours=1)).isoformat()}' "
            "WHERE id IN (3, 14, 15, 40, 49)")
    added = pd.DataFrame({"id": [50, 51, 52], "card_id": ["card-x"] * 3,
                          "label_time": [data.BASE] * 3, "is_fraud": [1, 0, 1],
                          "updated_at": [newest + timedelta(hours=2)] * 3})
    pg.psql(f"COPY {table} (id, card_id, label_time, is_fraud, updated_at) FROM STDIN WITH (FORMAT csv)",
            stdin=added.assign(label_time=lambda f: f["label_time"].map(lambda v: v.isoformat()),
                               updated_at=lambda f: f["updated_at"].map(lambda v: v.isoformat()))
            .to_csv(index=False, header=False))
    third = export_history(spark, labels, spec, source="test")
    assert third.rows == 8 and third.lower == first.upper

    # Every run together, newest version per id, is the table as it is now.
    query = f"SELECT id, card_id, is_fraud, updated_at FROM {table} ORDER BY id"
    current = pd.read_csv(io.StringIO(pg.psql(f"COPY ({query}) TO STDOUT WITH (FORMAT csv, HEADER)")),
                          parse_dates=["updated_at"])
    assert len(_exported(tmp_path / "history")) == 58
    pd.testing.assert_frame_equal(_latest(_exported(tmp_path / "history")), _latest(current), check_dtype=False)


def test_a_crashed_run_is_redone_in_place_and_the_lag_waits(spark: Any, history_table: Any, tmp_path: Path) -> None:
    table, frame = history_table
    labels = LabelsSpec.model_validate({"jdbc": {"url": pg.jdbc_url()}, "table": table,
                                        "timestamp_column": "label_time"})
    root = tmp_path / "history"
    cut = frame["updated_at"].iloc[19].to_pydatetime()  # rows 0..19 are at or before the cut
    # A run died after recording its window and writing part of its folder.
    root.mkdir()
    (root / "_export_state.json").write_text(json.dumps({
        "watermark": None, "runs": [],
        "pending": {"run_id": "crashed", "lower": None, "upper": cut.isoformat()}}))
    (root / "run=crashed").mkdir()
    pd.DataFrame({"id": [999]}).to_parquet(root / "run=crashed" / "part-junk.parquet")
    spec = ExportHistorySpec(path=str(root), updated_at_column="updated_at", safety_lag="30m")
    redone = export_history(spark, labels, spec, source="test")
    assert redone.run_id == "crashed" and redone.rows == 20
    assert sorted(pd.read_parquet(root / "run=crashed")["id"]) == list(range(20))

    # With a 30-minute lag, "now" = newest + 10 minutes leaves the rows of the last 20 minutes.
    now = frame["updated_at"].max().to_pydatetime() + timedelta(minutes=10)
    lagged = export_history(spark, labels, spec, source="test", now=now)
    assert lagged.upper == now - timedelta(minutes=30)
    assert lagged.rows == 30 - 2  # ids 20..47: updated_at of ids 48, 49 is within the lag
    later = export_history(spark, labels, spec, source="test", now=now + timedelta(hours=1))
    assert later.rows == 2
    assert sorted(_exported(root)["id"]) == list(range(50))
