"""Definition fingerprints: equal definitions hash alike, every value-changing field is in, and a
change reads as `path: before -> after`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from featurestream.config import load_feature_group
from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.config.fingerprint import changes, definition, fingerprint

ROOT = Path(__file__).resolve().parents[2]


def _spec(tmp_path: Path, mutate: Any = None, name: str = "cards") -> FeatureGroupSpec:
    data = yaml.safe_load((ROOT / "conf/feature_groups/card_risk.yaml").read_text())
    if mutate:
        mutate(data)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_feature_group(path)


def test_spellings_order_and_non_value_fields_do_not_change_the_fingerprint(tmp_path: Path) -> None:
    base = _spec(tmp_path)
    same = [
        lambda d: d["features"].reverse(),  # feature order changes no value
        lambda d: d["features"][0].update(windows=["24h", "60m", "5m"]),  # other spellings and order
        lambda d: d["windows"].update(tile="60s"),
        lambda d: d.update(description="another text"),
        lambda d: d["online_store"].update(feature_group_name="card-risk-v9"),
        lambda d: d["source"].update(topic="another-topic"),
        lambda d: d["windows"].update(allowed_lateness="5m"),  # the default, written out
    ]
    for index, mutate in enumerate(same):
        assert fingerprint(_spec(tmp_path, mutate, f"same{index}")) == fingerprint(base), index


def test_every_value_changing_field_changes_it_and_is_named(tmp_path: Path) -> None:
    base = _spec(tmp_path)
    cases = [
        (lambda d: d["windows"].update(tile="5m"), "windows.tile: 1m -> 5m"),
        (lambda d: d["windows"].update(allowed_lateness="10m"), "windows.allowed_lateness: 5m -> 10m"),
        (lambda d: d["features"][0].update(windows=["5m", "2h", "1d"]),
         "features.txn_count.windows: [5m, 1h, 1d] -> [5m, 2h, 1d]"),
        (lambda d: d["features"][2].update(agg="min"), "features.amount_mean.agg: mean -> min"),
        (lambda d: d["transforms"][0].update(filter="amount > 1"), "transforms[0].filter: amount > 0 -> amount > 1"),
        (lambda d: d["transforms"][2]["dedupe"].update(within="1h"), "transforms[2].dedupe.within: 10m -> 1h"),
        (lambda d: d["event_time"].update(max_future="2d"), "event_time.max_future: 1d -> 2d"),
        (lambda d: d["entity"].update(type="long"), "entity.type: string -> long"),
        (lambda d: d["online_store"].update(ttl="1d"), "online_store.ttl: 7d -> 1d"),
        (lambda d: d["features"].append({"name": "lo", "agg": "min", "column": "amount", "windows": ["1h"]}),
         "features.lo: added"),
        (lambda d: d["features"].pop(6), "features.last_merchant: removed"),
        (lambda d: d["features"][7].update(sketch_k=400), "features.amount.sketch_k: 200 -> 400"),
        # which events are refused (DLQ) changes which ones count
        (lambda d: d["source"].update(max_string_bytes={"merchant_id": 64}),
         "source.max_string_bytes.merchant_id: (none) -> 64"),
    ]
    for index, (mutate, line) in enumerate(cases):
        changed = _spec(tmp_path, mutate, f"changed{index}")
        assert fingerprint(changed) != fingerprint(base), line
        assert [c.line() for c in changes(definition(base), definition(changed))] == [line]


def test_a_parameter_the_model_gains_is_in_without_a_change_here(tmp_path: Path) -> None:
    """Fields are taken from the model generically: a new field of FeatureSpec is in the definition."""
    spec = _spec(tmp_path)
    feature = spec.features[0]
    assert set(definition(spec)["features"]["txn_count"]) == set(type(feature).model_fields) - {"name"}
    assert set(definition(spec)["windows"]) == set(type(spec.windows).model_fields)
