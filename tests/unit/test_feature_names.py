"""README's "Feature names" rule: every example it gives holds for the model's output names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from featurestream.config.feature_group import FeatureSpec

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = re.compile(r"`(\d+(?:ms|s|m|h|d))`\s+→\s+`(txn_count_\w+)`")


def _documented() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("**Feature names.**")
    section = text[start:text.index("\n- **", start)]
    return EXAMPLE.findall(section)


def test_readme_documents_examples() -> None:
    pairs = _documented()
    assert len(pairs) >= 5 and ("24h", "txn_count_1d") in pairs, pairs


@pytest.mark.parametrize(("window", "column"), _documented())
def test_documented_window_suffix_holds(window: str, column: str) -> None:
    feature = FeatureSpec(name="txn_count", agg="count", windows=[window])
    assert [name for name, _ in feature.output_names()] == [column]


def test_last_without_windows_keeps_its_name_and_spellings_of_one_window_clash() -> None:
    assert FeatureSpec(name="last_amount", agg="last", column="amount").output_names() == [("last_amount", 0)]
    with pytest.raises(ValueError, match="the same window is listed twice"):
        FeatureSpec(name="txn_count", agg="count", windows=["24h", "1d"])


def test_percentile_and_top_k_columns_are_named_predictably() -> None:
    """One column per percentile (`p` + the percent, `.` as `_`) and per rank (value and share)."""
    pct = FeatureSpec(name="amount", agg="approx_percentile", column="amount", percentiles=[0.5, 0.95, 0.999, 1.0],
                      windows=["24h"])
    assert [n for n, _ in pct.output_names()] == ["amount_p50_1d", "amount_p95_1d", "amount_p99_9_1d", "amount_p100_1d"]
    top = FeatureSpec(name="merchant", agg="top_k", column="merchant_id", k=2, windows=["1h", "5m"])
    assert [n for n, _ in top.output_names()] == [
        "merchant_top1_1h", "merchant_top1_share_1h", "merchant_top2_1h", "merchant_top2_share_1h",
        "merchant_top1_5m", "merchant_top1_share_5m", "merchant_top2_5m", "merchant_top2_share_5m"]
