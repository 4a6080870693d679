"""Run a feature group through the real stream (Kafka → Spark → emulator) one micro-batch at a time."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import yaml

from featurestream.config import load_feature_group, load_profile
from featurestream.config.feature_group import FeatureGroupSpec
from featurestream.config.profile import EnvironmentProfile
from featurestream.connectors.online_store import build_sink
from featurestream.connectors.provisioning import ensure_feature_group
from featurestream.dev.generator import produce_kafka
from featurestream.engine.pipeline import EngineMetrics, online_target, start_stream
from featurestream.engine.transforms import FILTERED_OBSERVATION
from tests.engine.oracle import Feature, Group

GROUP_YAML = """
entity: {key: card_id, type: string}
event_time: {field: event_time}
source:
  type: kafka
  topic: TOPIC
  format: json
  schema: {transaction_id: string, card_id: string, merchant_id: string, amount: double, event_time: timestamp}
transforms:
  - filter: "amount > 0"
  - dedupe: {key: transaction_id, within: 5m}
windows: {tile: 1m, allowed_lateness: 2m}
features:
  - {name: n, agg: count, windows: [2m, 5m]}
  - {name: total, agg: sum, column: amount, windows: [2m, 5m]}
  - {name: avg, agg: mean, column: amount, windows: [5m]}
  - {name: lo, agg: min, column: amount, windows: [5m]}
  - {name: hi, agg: max, column: amount, windows: [5m]}
  - {name: sd, agg: stddev_pop, column: amount, windows: [5m]}
  - {name: sds, agg: stddev_samp, column: amount, windows: [5m]}
  - {name: merchants, agg: approx_count_distinct, column: merchant_id, windows: [5m]}
  - {name: last_merchant, agg: last, column: merchant_id, windows: [5m]}
  - {name: latest_merchant, agg: last, column: merchant_id}
online_store: {feature_group_name: FGNAME, ttl: 7d}
"""

# The same group, spelled independently for the oracle.
ORACLE_GROUP = Group(
    tile_s=60, lateness_s=120, dedupe_key="transaction_id", dedupe_within_s=300,
    features=(
        Feature("n_2m", "count", None, 120), Feature("n_5m", "count", None, 300),
        Feature("total_2m", "sum", "amount", 120), Feature("total_5m", "sum", "amount", 300),
        Feature("avg_5m", "mean", "amount", 300), Feature("lo_5m", "min", "amount", 300),
        Feature("hi_5m", "max", "amount", 300), Feature("sd_5m", "stddev_pop", "amount", 300),
        Feature("sds_5m", "stddev_samp", "amount", 300),
        Feature("merchants_5m", "approx_count_distinct", "merchant_id", 300),
        Feature("last_merchant_5m", "last", "merchant_id", 300),
        Feature("latest_merchant", "last", "merchant_id", 0),
    ),
    keep=lambda e: e["amount"] is not None and e["amount"] > 0,
)
# Without the dedupe step the engine's map side folds events per entity before the shuffle; with
# it every non-late event travels alone (dedupe needs the state). Both paths face the oracle.
DEDUPE_LINE = "  - dedupe: {key: transaction_id, within: 5m}\n"
ORACLE_GROUP_NO_DEDUPE = replace(ORACLE_GROUP, dedupe_key=None)
# Only numeric inputs (no distinct or last features): the map side folds into its compact form
# (`PreAggregate.CompactFold`) instead of tiles; the oracle is the same minus those features.
NON_NUMERIC_LINES = (
    "  - {name: merchants, agg: approx_count_distinct, column: merchant_id, windows: [5m]}\n",
    "  - {name: last_merchant, agg: last, column: merchant_id, windows: [5m]}\n",
    "  - {name: latest_merchant, agg: last, column: merchant_id}\n",
)
ORACLE_GROUP_NUMERIC = replace(ORACLE_GROUP_NO_DEDUPE, features=tuple(
    f for f in ORACLE_GROUP.features if f.agg not in ("approx_count_distinct", "last")))


def event(card: str, ts_ms: int, amount: float, merchant: str | None, txn: str | None = None) -> dict[str, Any]:
    return {"transaction_id": txn or uuid.uuid4().hex, "card_id": card, "merchant_id": merchant,
            "amount": amount, "ts_ms": ts_ms}


def encode(e: dict[str, Any]) -> tuple[bytes, bytes]:
    moment = datetime.fromtimestamp(e["ts_ms"] / 1000, tz=UTC)
    body = {k: v for k, v in e.items() if k != "ts_ms"}
    body["event_time"] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(e["card_id"]).encode(), json.dumps(body).encode()


@dataclass
class CapturingSink:
    """The real online-store sink, plus every (entity, EventTime) it was given, batch by batch."""

    inner: Any
    written: list[tuple[int, str, datetime]] = field(default_factory=list)

    def write_batch(self, records: Any, batch_id: int, rows: int | None = None) -> Any:
        for row in records.select("card_id", "event_time").collect():
            self.written.append((batch_id, row["card_id"], row["event_time"]))
        return self.inner.write_batch(records, batch_id, rows)


@dataclass
class Run:
    spec: FeatureGroupSpec
    profile: EnvironmentProfile
    sink: CapturingSink
    group: Group = ORACLE_GROUP
    metrics: list[EngineMetrics] = field(default_factory=list)
    filtered: int = 0

    def micro_batch(self, spark: Any, events: list[dict[str, Any]]) -> None:
        """Produce `events`, then run availableNow: one data batch (and Spark's timer batch)."""
        if events:
            produce_kafka([encode(e) for e in events], self.profile.kafka.bootstrap_servers, self.spec.source.topic)
        queries = start_stream(spark, self.spec, self.profile, available_now=True, sink=self.sink)
        for query in queries.all():
            query.awaitTermination()
            assert query.exception() is None, query.exception()
        data_batches = [p for p in queries.features.recentProgress if p["numInputRows"]]
        assert len(data_batches) <= 1, "one produce must be one micro-batch for the oracle's watermark"
        self.metrics.append(queries.metrics)
        # Events the filter steps dropped: the stream's own observation, in each batch's progress.
        self.filtered += sum(int((p.get("observedMetrics") or {}).get(FILTERED_OBSERVATION, {}).get("rows", 0))
                             for p in queries.features.recentProgress)

    def online(self, entities: list[str]) -> dict[str, dict[str, str]]:
        runtime = boto3.client("sagemaker-featurestore-runtime")
        found = {}
        for entity in entities:
            got = runtime.get_record(FeatureGroupName=self.spec.online_store.feature_group_name,
                                     RecordIdentifierValueAsString=entity)
            if got.get("Record"):
                found[entity] = {f["FeatureName"]: f["ValueAsString"] for f in got["Record"]}
        return found

    def total(self, name: str) -> int:
        return sum(getattr(m, name) for m in self.metrics)


def new_run(tmp_path: Path, stack_env: dict[str, str], label: str, *, dedupe: bool = True,
            numeric_only: bool = False, steps: tuple[str, ...] = (), features: tuple[str, ...] = ()) -> Run:
    """`steps`, `features`: YAML flow lines added to the group's transforms (first) and features."""
    suffix = f"{label}-{uuid.uuid4().hex[:8]}"
    path = tmp_path / f"engine_{label.replace('-', '_')}.yaml"
    text = GROUP_YAML.replace("TOPIC", f"engine-{suffix}").replace("FGNAME", f"engine-{suffix}")
    text = text.replace("transforms:\n", "transforms:\n" + "".join(f"  - {step}\n" for step in steps))
    text = text.replace("features:\n", "features:\n" + "".join(f"  - {feature}\n" for feature in features))
    if not dedupe:
        assert DEDUPE_LINE in text
        text = text.replace(DEDUPE_LINE, "")
    if numeric_only:
        assert not dedupe and all(line in text for line in NON_NUMERIC_LINES)
        for line in NON_NUMERIC_LINES:
            text = text.replace(line, "")
    path.write_text(text)
    yaml.safe_load(text)
    spec = load_feature_group(path)
    profile = load_profile("local")
    profile = profile.model_copy(update={
        "checkpoint_root": str(tmp_path / f"checkpoints-{suffix}"),
        "dlq_path": str(tmp_path / f"dlq-{suffix}"),
        "kafka": profile.kafka.model_copy(update={"bootstrap_servers": stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"]}),
    })
    ensure_feature_group(boto3.client("sagemaker"), spec, profile)
    sink = CapturingSink(build_sink(online_target(spec, profile), profile.feature_store,
                                    str(tmp_path / f"online-dlq-{suffix}")))
    oracle = ORACLE_GROUP_NUMERIC if numeric_only else ORACLE_GROUP if dedupe else ORACLE_GROUP_NO_DEDUPE
    return Run(spec, profile, sink, oracle)
