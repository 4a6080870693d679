"""Random labelled rows and compacted feature groups built to hit every rule of the as-of join.

Times sit on a 10-minute grid over three days, so label times equal feature EventTimes often (the
<= vs < rule), several versions share an EventTime (is_deleted, then write_time decides), some
values are written hours late (availability mode), some rows are delete markers, some values and
some label keys/timestamps are null. Three groups: two keyed by card (one pass), one by merchant.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

BASE = pd.Timestamp("2026-03-01T00:00:00Z")
GRID_MINUTES = 10
SLOTS = 3 * 24 * 6  # three days of 10-minute slots


@dataclass
class Scenario:
    labels: pd.DataFrame
    groups: dict[str, pd.DataFrame]


def _grid_times(rng: np.random.Generator, n: int) -> pd.Series:
    minutes = rng.integers(0, SLOTS, n) * GRID_MINUTES
    return pd.Series(BASE + pd.to_timedelta(minutes, unit="m"))


def _metadata(rng: np.random.Generator, event_time: pd.Series) -> pd.DataFrame:
    n = len(event_time)
    late = rng.random(n) < 0.15
    delay_ms = np.where(late, rng.integers(3_600_000, 12 * 3_600_000, n), rng.integers(0, 300_000, n))
    # + row index in microseconds: no two versions share (EventTime, is_deleted, write_time).
    write_time = event_time + pd.to_timedelta(delay_ms, unit="ms") + pd.to_timedelta(np.arange(n), unit="us")
    deleted = rng.random(n) < 0.06
    return pd.DataFrame({
        "write_time": write_time,
        "api_invocation_time": write_time - pd.to_timedelta(rng.integers(0, 2000, n), unit="ms"),
        "is_deleted": deleted,
    })


def _group(rng: np.random.Generator, n: int, keys: dict[str, np.ndarray], values: dict[str, np.ndarray],
           event_time_as_string: bool = False) -> pd.DataFrame:
    event_time = _grid_times(rng, n)
    meta = _metadata(rng, event_time)
    frame = pd.DataFrame({**keys})
    # SageMaker's EventTime feature is often an ISO-8601 string; the reader must accept both.
    frame["event_time"] = (event_time.dt.strftime("%Y-%m-%dT%H:%M:%SZ") if event_time_as_string else event_time)
    for name, column in values.items():
        frame[name] = column
    frame = pd.concat([frame, meta], axis=1)
    # Delete markers carry no values.
    for name in values:
        frame.loc[frame["is_deleted"], name] = None
    frame["event_date"] = event_time.dt.strftime("%Y-%m-%d")
    return frame


def scenario(seed: int = 8, labels: int = 400, cards: int = 25, merchants: int = 8) -> Scenario:
    rng = np.random.default_rng(seed)
    card_names = np.array([f"card-{i:03d}" for i in range(cards)])
    label_frame = pd.DataFrame({
        "label_id": np.arange(labels, dtype=np.int64),
        "card_id": card_names[rng.integers(0, cards, labels)],
        "merchant": rng.integers(0, merchants, labels).astype(np.int64),
        "label_time": _grid_times(rng, labels),
        "is_fraud": (rng.random(labels) < 0.1).astype(np.int32),
        "amount": np.round(rng.random(labels) * 500, 2),
    })
    label_frame.loc[rng.random(labels) < 0.03, "card_id"] = None
    label_frame["merchant"] = label_frame["merchant"].astype("Int64")
    label_frame.loc[rng.random(labels) < 0.03, "merchant"] = pd.NA
    label_frame.loc[rng.random(labels) < 0.02, "label_time"] = pd.NaT
    label_frame["updated_at"] = label_frame["label_time"].fillna(BASE) + pd.Timedelta(hours=1)

    n_card = 1500
    amount = np.round(rng.random(n_card) * 1000, 2)
    amount[rng.random(n_card) < 0.1] = np.nan
    card_activity = _group(
        rng, n_card, {"card_id": card_names[rng.integers(0, cards, n_card)]},
        {"txn_count_5m": rng.integers(0, 30, n_card).astype(np.int64), "amount_sum_5m": amount},
    )
    n_profile = 200
    card_profile = _group(
        rng, n_profile, {"card_id": card_names[rng.integers(0, cards, n_profile)]},
        {"segment": np.array(["gold", "silver", "basic"])[rng.integers(0, 3, n_profile)],
         "limit": rng.integers(1, 50, n_profile).astype(np.int64) * 100},
        event_time_as_string=True,
    )
    n_merchant = 400
    merchant_risk = _group(
        rng, n_merchant, {"merchant_id": rng.integers(0, merchants, n_merchant).astype(np.int64)},
        {"risk_score": np.round(rng.random(n_merchant), 4)},
    )
    return Scenario(label_frame, {"card_activity": card_activity, "card_profile": card_profile,
                                  "merchant_risk": merchant_risk})


def write_compacted(frame: pd.DataFrame, path: Path) -> str:
    """The compacted layout: Parquet partitioned by event_date (hive style)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    # Spark reads microsecond timestamps only (pandas writes nanoseconds).
    schema = pa.schema([
        f.with_type(pa.timestamp("us", tz="UTC")) if pa.types.is_timestamp(f.type) else f for f in table.schema
    ])
    table = table.cast(schema)
    ds.write_dataset(table, str(path), format="parquet", partitioning=["event_date"], partitioning_flavor="hive",
                     existing_data_behavior="overwrite_or_ignore")
    return str(path)


def to_micros(frame: pd.DataFrame) -> pd.DataFrame:
    """Every datetime column as UTC unix microseconds (nullable), so both sides compare exactly."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if pd.api.types.is_datetime64_any_dtype(series):
            if getattr(series.dt, "tz", None) is None:
                series = series.dt.tz_localize("UTC")
            utc = series.dt.tz_convert("UTC")
            out[column] = pd.array(
                [None if pd.isna(v) else int(v.value // 1000) for v in utc], dtype="Int64"
            )
    return out


def normalise(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Same columns, same order, rows by label_id, nulls as None, numbers compared as floats."""
    out = to_micros(frame[columns]).sort_values("label_id").reset_index(drop=True)
    for column in out.columns:
        if pd.api.types.is_numeric_dtype(out[column]):
            out[column] = out[column].astype("Float64")
    return out.astype(object).where(out.notna(), None)
