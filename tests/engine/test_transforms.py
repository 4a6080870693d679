"""Transform steps as pure DataFrame → DataFrame functions, on small batch frames (no stream)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from featurestream.engine.transforms import (
    cast_columns,
    dedupe_rows,
    derive_columns,
    drop_columns,
    fill_nulls,
    filter_rows,
    rename_columns,
)

T0 = datetime(2026, 11, 26, 9, 0, 0)
ROWS = [("c1", "t1", 10.0, None, T0), ("c1", "t2", -1.0, "m-2", T0 + timedelta(seconds=30)),
        ("c2", "t3", 2.5, "m-1", T0 + timedelta(minutes=1))]
SCHEMA = "card_id string, txn string, amount double, merchant string, event_time timestamp"


@pytest.fixture
def frame(spark):
    return spark.createDataFrame(ROWS, SCHEMA)


def test_filter_keeps_rows_where_the_condition_holds(frame) -> None:
    assert sorted(r.txn for r in frame.transform(filter_rows("amount > 0")).collect()) == ["t1", "t3"]


def test_cast_changes_only_the_named_columns(frame) -> None:
    out = frame.transform(cast_columns({"amount": "bigint"}))
    assert dict(out.dtypes)["amount"] == "bigint" and dict(out.dtypes)["txn"] == "string"
    assert sorted(r.amount for r in out.collect()) == [-1, 2, 10]


def test_derive_adds_columns_in_order(frame) -> None:
    out = frame.transform(derive_columns({"cents": "cast(amount * 100 as bigint)", "double_cents": "cents * 2"}))
    assert {r.txn: (r.cents, r.double_cents) for r in out.collect()} == {
        "t1": (1000, 2000), "t2": (-100, -200), "t3": (250, 500)}


def test_fill_nulls_keeps_the_column_type(frame) -> None:
    out = frame.transform(fill_nulls({"merchant": "unknown", "amount": 0}))
    assert dict(out.dtypes)["amount"] == "double"
    assert {r.txn: r.merchant for r in out.collect()} == {"t1": "unknown", "t2": "m-2", "t3": "m-1"}


def test_rename_and_drop(frame) -> None:
    out = frame.transform(rename_columns({"merchant": "merchant_id"})).transform(drop_columns(["txn"]))
    assert out.columns == ["card_id", "amount", "merchant_id", "event_time"]


def test_dedupe_drops_repeats_of_a_key_within_the_bound(spark) -> None:
    rows = [("c1", "k", 1.0, None, T0), ("c1", "k", 1.0, None, T0),                     # copy
            ("c1", "k", 2.0, None, T0 + timedelta(minutes=4)),                            # within 5m of the kept one
            ("c1", "k", 3.0, None, T0 + timedelta(minutes=6)),                            # beyond: kept
            ("c2", "k", 4.0, None, T0),                                                   # other entity: kept
            ("c1", None, 5.0, None, T0), ("c1", None, 5.0, None, T0)]                     # no key: never deduped
    frame = spark.createDataFrame(rows, SCHEMA)
    out = frame.transform(dedupe_rows("txn", timedelta(minutes=5), "event_time", "card_id"))
    assert sorted((r.card_id, r.amount) for r in out.collect()) == [
        ("c1", 1.0), ("c1", 3.0), ("c1", 5.0), ("c1", 5.0), ("c2", 4.0)]
