"""The built training set equals DuckDB's ASOF JOIN (TTL, deletes, availability written in SQL) on
random data with ties, nulls, late-written values, delete markers and three groups on two keys.

Labels come from the stack's PostgreSQL through the JDBC reader; features are compacted Parquet.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from featurestream.config.training_set import TrainingSetSpec
from featurestream.training.build import build_training_set
from tests.training import data
from tests.training.conftest import Loaded
from tests.training.expected import ALL_GROUPS, output_columns
from tests.training.oracle import Oracle

pytestmark = pytest.mark.integration

CASES = {
    # 25 cards of ~4% each: with the default hot_key_share (1%) every card is "hot", so the
    # bucketed path with seeds runs on every key; "off" runs the plain single-bucket path.
    "at_or_before/skew_off": {"strictly_before": False, "availability": False, "skew": {"mode": "off"}},
    "at_or_before/skew_buckets": {"strictly_before": False, "availability": False,
                                  "skew": {"sample_fraction": 1.0}},
    "strictly_before/skew_buckets": {"strictly_before": True, "availability": False,
                                     "skew": {"sample_fraction": 1.0, "hot_key_share": 0.005}},
    # Default sampling: a third of the feature files (one of three days), 2% of the label rows.
    "availability/skew_buckets": {"strictly_before": False, "availability": True, "skew": {}},
    "availability_strict/skew_off": {"strictly_before": True, "availability": True, "skew": {"mode": "off"}},
    # Every other case reduces the feature rows per label interval before the shuffle (the tiles
    # jar's LabelIntervalReduce); this one keeps the plain path, used without the jar.
    "at_or_before/not_reduced": {"strictly_before": False, "availability": False, "skew": {"mode": "off"},
                                 "reduce_max_labels": 0},
}


def _build(spark: Any, loaded: Loaded, name: str, **overrides: Any) -> tuple[pd.DataFrame, dict[str, Any], Path]:
    out = loaded.root / "out" / name.replace("/", "_")
    spec = TrainingSetSpec.model_validate(loaded.spec(output={"path": str(out)}, **overrides))
    result = build_training_set(spark, spec, source="test")
    manifest = json.loads(Path(result.manifest_path).read_text())
    return pd.read_parquet(out / "data"), manifest, out


@pytest.mark.parametrize("case", list(CASES))
def test_equals_duckdb_asof_join(spark: Any, loaded: Loaded, case: str) -> None:
    options = CASES[case]
    ours, manifest, _ = _build(spark, loaded, case, join=options)
    expected = Oracle(loaded.scenario.labels, loaded.scenario.groups).expected(
        ALL_GROUPS, strictly_before=options["strictly_before"], availability=options["availability"])
    columns = output_columns(ALL_GROUPS)
    assert list(ours.columns) == columns
    pd.testing.assert_frame_equal(data.normalise(ours, columns), data.normalise(expected, columns))
    # The data must exercise what it claims to: matches, TTL-expired and deleted outcomes all occur.
    assert 0.2 < ours["txn_count_5m"].isna().mean() < 0.9
    passes = manifest["join"]["passes"]
    assert [p["groups"] for p in passes] == [["card_activity", "card_profile"], ["merchant_risk"]]
    reduced = options.get("reduce_max_labels", 1) > 0
    assert all(p["features_reduced_before_shuffle"] is reduced for p in passes)
    if options["skew"].get("mode") == "off":
        assert all(p["hot_keys"] == 0 for p in passes)
    else:
        assert passes[0]["hot_keys"] > 0 and max(passes[0]["buckets_per_hot_key"]) > 1


def test_manifest_describes_the_output(spark: Any, loaded: Loaded) -> None:
    split = {"validation_start": "2026-03-03T00:00:00Z"}
    out = loaded.root / "out" / "manifest"
    spec = TrainingSetSpec.model_validate(loaded.spec(output={"path": str(out), "split": split}))
    result = build_training_set(spark, spec, source="conf/training_sets/test_set.yaml")
    manifest = json.loads(Path(result.manifest_path).read_text())
    train, validation = pd.read_parquet(out / "train"), pd.read_parquet(out / "validation")
    cut = pd.Timestamp("2026-03-03T00:00:00Z")
    label_time = pd.to_datetime(train["label_time"], utc=True)
    assert ((label_time < cut) | label_time.isna()).all()
    assert (pd.to_datetime(validation["label_time"], utc=True) >= cut).all()
    assert len(train) + len(validation) == len(loaded.scenario.labels)

    splits = manifest["output"]["splits"]
    for name, frame in (("train", train), ("validation", validation)):
        assert splits[name]["rows"] == len(frame)
        for feature in ("txn_count_5m", "amount_sum_5m", "profile_segment", "risk_score"):
            assert splits[name]["null_rate"][feature] == pytest.approx(frame[feature].isna().mean(), abs=1e-6)
        counts = frame["is_fraud"].value_counts()
        assert splits[name]["label_distribution"]["is_fraud"]["counts"] == {str(k): int(v) for k, v in counts.items()}
    assert manifest["output"]["rows_without_timestamp"] == int(loaded.scenario.labels["label_time"].isna().sum())

    labels = manifest["inputs"]["labels"]
    assert labels["kind"] == "jdbc" and labels["table"] == loaded.table
    assert labels["rows"] == len(train) + len(validation)
    assert labels["partitioning"]["column"] == "label_id"  # the integer primary key, discovered
    assert "password" not in labels["url"]
    groups = {g["name"]: g for g in manifest["inputs"]["feature_groups"]}
    assert groups["card_profile"]["features"] == {"segment": "profile_segment", "limit": "profile_credit_limit"}
    for group in groups.values():
        assert group["file_count"] == len(group["files"]) > 0
        assert all(Path(f.removeprefix("file:")).exists() for f in group["files"])
        assert all(p.startswith("event_date=2026-03-0") for p in group["partitions"])
    assert manifest["config_hash"].startswith("sha256:") and manifest["code_version"]["featurestream"]
    assert manifest["config"]["feature_groups"][0]["ttl"] == "2h"
    # The same config gives the same hash: the manifest is enough to find the set's definition.
    from featurestream.training.manifest import config_hash

    assert config_hash(spec) == manifest["config_hash"]


def test_ttl_pruning_skips_old_partitions(spark: Any, loaded: Loaded) -> None:
    """Labels from the third day only: card_activity (TTL 2h) reads day 2-3 partitions, the others all days."""
    labels = {**loaded.spec()["labels"], "start": "2026-03-03T00:00:00Z"}
    _, manifest, _ = _build(spark, loaded, "pruned", labels=labels)
    groups = {g["name"]: g for g in manifest["inputs"]["feature_groups"]}
    assert groups["card_activity"]["partitions"] == ["event_date=2026-03-02", "event_date=2026-03-03"]
    assert len(groups["card_profile"]["partitions"]) == 3
    assert any("TIMESTAMP '2026-03-03 00:00:00.000000'" in p for p in manifest["inputs"]["labels"]["predicates"])


def test_label_columns_with_dots_and_spaces_pass_through(spark: Any, loaded: Loaded) -> None:
    """A labels query may name its columns freely ("amount.usd", "merchant name"): the join must
    carry them by reference, not by a name string that Spark would read as a struct path."""
    query = (f'SELECT label_id, card_id, merchant, label_time, is_fraud, amount AS "amount.usd", '
             f"'m-' || merchant AS \"merchant name\" FROM {loaded.table}")
    labels = {**loaded.spec()["labels"], "query": query}
    labels.pop("table")
    labels.pop("columns")
    ours, _, _ = _build(spark, loaded, "odd_names", labels=labels)
    expected = Oracle(loaded.scenario.labels, loaded.scenario.groups).expected(ALL_GROUPS)
    assert [c for c in ours.columns if c in ("amount.usd", "merchant name")] == ["amount.usd", "merchant name"]
    renamed = ours.rename(columns={"amount.usd": "amount"}).drop(columns=["merchant name"])
    columns = output_columns(ALL_GROUPS)
    pd.testing.assert_frame_equal(data.normalise(renamed[columns], columns), data.normalise(expected, columns))
    by_id = ours.set_index("label_id")
    merchants = loaded.scenario.labels.set_index("label_id")["merchant"]
    want = merchants.map(lambda m: None if pd.isna(m) else f"m-{int(m)}")
    assert by_id["merchant name"].reindex(want.index).tolist() == want.tolist()


def test_label_columns_named_freely_are_selected_and_described(spark: Any, loaded: Loaded) -> None:
    """`label_columns: ["amount.usd"]` (the docs allow any name): selected through `labels.columns`
    (quoted in the database's SQL) and described in the manifest (quoted in Spark)."""
    query = (f'SELECT label_id, card_id, merchant, label_time, is_fraud, amount AS "amount.usd", '
             f"'m-' || merchant AS \"merchant name\" FROM {loaded.table}")
    labels = {**loaded.spec()["labels"], "query": query, "label_columns": ["amount.usd", "merchant name"],
              "columns": ["label_id", "card_id", "merchant", "label_time", "amount.usd", "merchant name"]}
    labels.pop("table")
    ours, manifest, _ = _build(spark, loaded, "named_labels", labels=labels)
    assert "is_fraud" not in ours.columns and {"amount.usd", "merchant name"} <= set(ours.columns)
    described = manifest["output"]["splits"]["data"]["label_distribution"]
    amounts = loaded.scenario.labels["amount"]
    assert described["amount.usd"]["kind"] == "numeric"
    assert described["amount.usd"]["min"] == pytest.approx(amounts.min())
    assert described["amount.usd"]["mean"] == pytest.approx(amounts.mean())
    assert described["amount.usd"]["nulls"] == int(amounts.isna().sum())
    merchants = loaded.scenario.labels["merchant"].dropna().map(lambda m: f"m-{int(m)}").value_counts()
    shown = described["merchant name"]
    assert shown["kind"] == ("counts" if len(merchants) <= 50 else "top")
    assert all(merchants[name] == count for name, count in shown["counts"].items() if name != "null")
