"""No leakage, no staleness: every joined value was known at its row's time and is the newest one.

The feature values *are* their own times (et_s = EventTime, wt_s = write_time, in epoch seconds),
so the check needs nothing from the engine: a value after the row's timestamp is a leak, a value
older than the TTL is stale, and in availability mode a value written after the row's time could
not have been served (here every write follows its EventTime, so none is later either). A
brute-force pandas search over all candidate rows then checks that the chosen value is the one
the rule picks. Composite keys (card, device), labels from Parquet.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from featurestream.config.training_set import TrainingSetSpec
from featurestream.training.build import build_training_set
from tests.training import data

TTL_S = 3 * 3600


@pytest.fixture(scope="module")
def timed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(42)
    root = tmp_path_factory.mktemp("leakage")
    n_labels, n_rows = 300, 1500
    cards, devices = np.array([f"c{i}" for i in range(6)]), np.array(["ios", "android", "web"])
    labels = pd.DataFrame({
        "label_id": np.arange(n_labels, dtype=np.int64),
        "card": cards[rng.integers(0, 6, n_labels)],
        "device": devices[rng.integers(0, 3, n_labels)],
        "ts": data.BASE + pd.to_timedelta(rng.integers(0, 2 * 86400, n_labels) // 600 * 600, unit="s"),
    })
    event_time = data.BASE + pd.to_timedelta(rng.integers(0, 2 * 86400, n_rows) // 600 * 600, unit="s")
    write_time = event_time + pd.to_timedelta(rng.integers(0, 6 * 3600, n_rows), unit="s") + pd.to_timedelta(
        np.arange(n_rows), unit="us")
    features = pd.DataFrame({
        "card_id": cards[rng.integers(0, 6, n_rows)],
        "device_type": devices[rng.integers(0, 3, n_rows)],
        "event_time": event_time,
        "write_time": write_time,
        "api_invocation_time": write_time,
        "is_deleted": rng.random(n_rows) < 0.05,
    })
    features["et_s"] = features["event_time"].astype("int64") / 1e9
    features["wt_s"] = features["write_time"].astype("int64") / 1e9
    features["event_date"] = features["event_time"].dt.strftime("%Y-%m-%d")
    data.write_compacted(features, root / "features")
    table = pa.Table.from_pandas(labels, preserve_index=False)
    table = table.cast(pa.schema([f.with_type(pa.timestamp("us", tz="UTC")) if f.name == "ts" else f
                                  for f in table.schema]))
    (root / "labels").mkdir()
    pq.write_table(table, root / "labels" / "part-0.parquet")
    return root, labels, features


def _build(spark: Any, root: Path, name: str, **join: Any) -> pd.DataFrame:
    spec = TrainingSetSpec.model_validate({
        "name": name,
        "labels": {"path": str(root / "labels"), "timestamp_column": "ts"},
        "feature_groups": [{"name": "timed", "path": str(root / "features"),
                            "keys": {"card": "card_id", "device": "device_type"},
                            "features": ["et_s", "wt_s"], "ttl": f"{TTL_S}s" if join.pop("ttl", False) else None}],
        "join": join,
        "output": {"path": str(root / "out" / name)},
    })
    build_training_set(spark, spec, source="test")
    out = pd.read_parquet(root / "out" / name / "data").sort_values("label_id").reset_index(drop=True)
    out["t_s"] = pd.to_datetime(out["ts"], utc=True).astype("int64") / 1e9
    return out


def _newest(features: pd.DataFrame, row: pd.Series, *, strict: bool, availability: bool) -> pd.Series | None:
    """Brute force: the winning candidate row for one label row (None if there is none)."""
    t = row["t_s"]
    same = features[(features["card_id"] == row["card"]) & (features["device_type"] == row["device"])]
    if availability:
        # What the online store held: the first write (write_time = API time here) of the newest EventTime.
        eligible = same[(same["wt_s"] < t) if strict else (same["wt_s"] <= t)]
        if eligible.empty:
            return None
        return eligible.sort_values(["et_s", "wt_s"], ascending=[False, True]).iloc[0]
    eligible = same[(same["et_s"] < t) if strict else (same["et_s"] <= t)]
    if eligible.empty:
        return None
    return eligible.sort_values(["et_s", "is_deleted", "wt_s"]).iloc[-1]


@pytest.mark.parametrize("mode", ["at_or_before_ttl", "strictly_before", "availability"])
def test_no_value_from_the_future_and_each_is_the_newest(spark: Any, timed: Any, mode: str) -> None:
    root, _, features = timed
    strict, availability, ttl = mode == "strictly_before", mode == "availability", mode == "at_or_before_ttl"
    out = _build(spark, root, mode, strictly_before=strict, availability=availability, ttl=ttl)
    joined = out[out["et_s"].notna()]
    assert len(joined) > 100
    # The leakage checks: EventTime (and write_time in availability mode) never after the row's time.
    assert (joined["et_s"] < joined["t_s"]).all() if strict else (joined["et_s"] <= joined["t_s"]).all()
    if availability:
        assert (joined["wt_s"] <= joined["t_s"]).all()
    if ttl:
        assert (joined["t_s"] - joined["et_s"] <= TTL_S).all()
    # The output EventTime column is the EventTime of the values it came with.
    event_time = pd.to_datetime(joined["timed_event_time"], utc=True).astype("int64") / 1e9
    assert np.allclose(event_time, joined["et_s"])
    # The value is the newest eligible one (and a null means none, a delete, or expired).
    for _, row in out.iterrows():
        winner = _newest(features, row, strict=strict, availability=availability)
        expired = winner is not None and ttl and row["t_s"] - winner["et_s"] > TTL_S
        if winner is None or winner["is_deleted"] or expired:
            assert pd.isna(row["et_s"]), row.to_dict()
        else:
            assert row["et_s"] == winner["et_s"] and row["wt_s"] == winner["wt_s"], row.to_dict()
