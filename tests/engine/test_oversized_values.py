"""Issue 19, finding 8: one oversized string must not freeze its entity's online record.

Through the real stream (Kafka → Spark → tile engine → emulator): a 300 KB merchant_id held by the
window-less `last` would make every later record of its card over the online store's 350 KB, each
refused, the card's online record frozen at its old EventTime. It must go to the DLQ at parsing.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from featurestream.io import paths
from tests.engine.harness import event, new_run

pytestmark = pytest.mark.integration

START_MS = (int(time.time()) // 60 - 30) * 60_000
POISON = "z" * 300_000  # > the group's share (2 string features: ~173 KB each); 'z' wins ties too


def _as_of(record: dict[str, str]) -> int:
    return round(datetime.fromisoformat(record["event_time"].replace("Z", "+00:00")).timestamp() * 1000)


def test_an_oversized_value_goes_to_the_dlq_and_the_entity_keeps_updating(spark: Any, stack_env: dict[str, str],
                                                                         tmp_path: Path) -> None:
    run = new_run(tmp_path, stack_env, "oversized")
    limit = run.spec.string_limits()["merchant_id"]
    assert len(POISON) > limit
    run.micro_batch(spark, [event("card-a", START_MS, 10.0, "m-1", "t1"), event("card-b", START_MS, 1.0, "m-2", "b1")])
    assert _as_of(run.online(["card-a"])["card-a"]) == START_MS
    # The poison, then an event without a merchant: `last` would keep the poison (latest non-null).
    run.micro_batch(spark, [event("card-a", START_MS + 1_000, 5.0, POISON, "t2"),
                            event("card-a", START_MS + 2_000, 2.5, None, "t3"),
                            event("card-b", START_MS + 2_000, 3.0, "m-3", "b2")])

    online = run.online(["card-a", "card-b"])
    # Computed by hand: card-a has t1 and t3 (t2 refused), card-b b1 and b2; all in one 5m window.
    assert _as_of(online["card-a"]) == START_MS + 2_000
    card_a = online["card-a"]
    assert (card_a["n_5m"], float(card_a["total_5m"]), card_a["latest_merchant"]) == ("2", 12.5, "m-1")
    assert (online["card-b"]["n_5m"], online["card-b"]["latest_merchant"]) == ("2", "m-3")
    dlq = pq.read_table(paths.join(run.profile.dlq_path, run.spec.name, "events")).to_pylist()
    assert [(r["reason"], len(r["payload"]) > 300_000) for r in dlq] == [
        (f"value too large: merchant_id is over {limit} bytes (source.max_string_bytes)", True)]
    assert run.total("aggregated") == 4


def test_an_oversized_derived_value_goes_to_the_dlq_with_its_payload(spark: Any, stack_env: dict[str, str],
                                                                      tmp_path: Path) -> None:
    # A concat doubles a merchant the parser accepted: only the transforms can see the result.
    run = new_run(tmp_path, stack_env, "oversized-derived",
                  steps=('{derive: {merchant_tag: "concat(merchant_id, merchant_id)"}}',
                         "{cast: {merchant_tag: string}}"),
                  features=("{name: tag, agg: last, column: merchant_tag}",))
    limit = run.spec.derived_string_limits()["merchant_tag"]
    merchant = "y" * (limit // 2 + 1)  # within its own limit (the same share), twice is over
    assert len(merchant) <= run.spec.string_limits()["merchant_id"]
    run.micro_batch(spark, [event("card-a", START_MS, 10.0, "m-1", "t1"),
                            event("card-a", START_MS + 1_000, 5.0, merchant, "t2"),
                            event("card-a", START_MS + 2_000, 2.5, None, "t3")])

    card_a = run.online(["card-a"])["card-a"]
    # Computed by hand: t2 refused, so card-a has t1 and t3; `last` keeps t1's merchant and tag.
    assert _as_of(card_a) == START_MS + 2_000
    assert (card_a["n_5m"], float(card_a["total_5m"]), card_a["latest_merchant"], card_a["tag"]) == \
        ("2", 12.5, "m-1", "m-1m-1")
    dlq = pq.read_table(paths.join(run.profile.dlq_path, run.spec.name, "events")).to_pylist()
    assert [(r["reason"], merchant in r["payload"], r["payload_encoding"], r["offset"] is not None) for r in dlq] == [
        (f"value too large: merchant_tag is over {limit} bytes (derived)", True, "utf-8", True)]
    assert (run.total("aggregated"), run.total("dlq"), run.filtered) == (2, 1, 0)


def test_a_batch_source_leaves_an_oversized_derived_value_out(spark: Any, tmp_path: Path) -> None:
    from featurestream.config import load_feature_group
    from featurestream.engine.transforms import apply_stream_transforms

    path = tmp_path / "derived.yaml"
    path.write_text("""
entity: {key: card_id, type: string}
event_time: {field: event_time}
source: {type: kafka, topic: t, format: json, schema: {card_id: string, merchant_id: string, amount: double,
         event_time: timestamp}}
transforms:
  - derive: {merchant_tag: "repeat(merchant_id, 3)"}
  - filter: "amount > 0"
windows: {tile: 1m}
features:
  - {name: top, agg: top_k, column: merchant_tag, k: 1, windows: [5m]}
online_store: {feature_group_name: derived}
""")
    spec = load_feature_group(path)
    limit = spec.derived_string_limits()["merchant_tag"]
    at = datetime(2026, 1, 1)
    rows = [("a", "m", 1.0, at), ("a", "x" * (limit // 3 + 1), 1.0, at), ("b", "x" * (limit // 3 + 1), -1.0, at)]
    frame = spark.createDataFrame(rows, "card_id string, merchant_id string, amount double, event_time timestamp")
    out = apply_stream_transforms(frame, spec, "derived_limit_test")
    # The short one kept, the long one left out, the filtered one filtered (not refused).
    assert [r["merchant_tag"] for r in out.collect()] == ["mmm"]
