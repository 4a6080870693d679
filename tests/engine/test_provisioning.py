"""`feature-groups plan|apply|describe` against the emulator: create, no-op, additive update, refusals."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from featurestream.cli import main
from featurestream.config import load_feature_group
from featurestream.connectors.provisioning import feature_definitions

ROOT = Path(__file__).resolve().parents[2]


def _group(tmp_path: Path, name: str, mutate: Any = None) -> Path:
    data = yaml.safe_load((ROOT / "conf/feature_groups/card_risk.yaml").read_text())
    data["online_store"]["feature_group_name"] = name
    if mutate:
        mutate(data)
    path = tmp_path / "cards.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["feature-groups", *args])
    return code, capsys.readouterr().out


def test_types_come_from_the_aggregations() -> None:
    spec = load_feature_group(ROOT / "conf/feature_groups/card_risk.yaml")
    types = {d["FeatureName"]: d["FeatureType"] for d in feature_definitions(spec)}
    assert types["card_id"] == "String" and types["event_time"] == "String"
    assert types["txn_count_5m"] == "Integral" and types["merchant_distinct_1d"] == "Integral"
    assert types["amount_sum_1h"] == "Fractional" and types["amount_stddev_1d"] == "Fractional"
    assert types["last_merchant"] == "String"
    # Sketches: percentiles and top-k shares are numbers, top-k values strings (scalar types: every
    # online store tier serves them).
    assert types["amount_p95_1h"] == "Fractional" and types["amount_p99_1d"] == "Fractional"
    assert types["merchant_top1_1d"] == "String" and types["merchant_top3_share_1d"] == "Fractional"


def test_apply_is_idempotent_adds_features_and_refuses_incompatible_changes(stack_env, tmp_path, capsys) -> None:
    name = f"prov-{uuid.uuid4().hex[:8]}"
    path = _group(tmp_path, name)
    code, out = _cli(capsys, "plan", str(path))
    assert code == 0 and f"feature group {name}: create" in out and "+ txn_count_5m" in out

    code, out = _cli(capsys, "apply", str(path))
    assert code == 0 and f"{name}: Created" in out

    code, out = _cli(capsys, "apply", str(path))
    assert code == 0 and f"feature group {name}: none" in out and "= txn_count_5m" in out and "+ " not in out

    path = _group(tmp_path, name, lambda d: d["features"].append(
        {"name": "amount_min", "agg": "min", "column": "amount", "windows": ["1h"]}))
    code, out = _cli(capsys, "apply", str(path))
    assert code == 0 and f"feature group {name}: update" in out and "+ amount_min_1h" in out

    code, out = _cli(capsys, "describe", str(path))
    assert code == 0 and "amount_min_1h" in out and "record identifier" in out and "event time" in out

    path = _group(tmp_path, name, lambda d: (d["features"].append(
        {"name": "amount_min", "agg": "min", "column": "amount", "windows": ["1h"]}),
        d["features"][0].update(agg="sum", column="amount")))
    code, out = _cli(capsys, "apply", str(path))
    assert code == 1 and "refused" in out and "txn_count_5m: type Integral → Fractional" in out

    path = _group(tmp_path, name, lambda d: (d["features"].append(
        {"name": "amount_min", "agg": "min", "column": "amount", "windows": ["1h"]}),
        d["entity"].update(key="merchant_id")))
    code, out = _cli(capsys, "plan", str(path))
    assert code == 1 and "identifiers cannot change" in out

    path = _group(tmp_path, name)  # amount_min_1h is gone from the spec
    code, out = _cli(capsys, "apply", str(path))
    assert code == 1 and "amount_min_1h: in the feature group but not in the spec" in out
