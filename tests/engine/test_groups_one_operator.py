"""Several groups on one topic share one state operator (pipeline.start_source_query, TileEngine.applyGroups).

Three groups that differ in transforms (a filter, a dedupe step) and features read one topic. The
job of the three has one state operator in every micro-batch's progress, and each group's records
(its data batch's and its timer batch's), DLQ records and counters are those of the same group run
alone (the one-group job, whose plan has its own operator): an independent run per group, over the
same events. Late events per group and state across data batches: test_collected_batch (2 groups).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from featurestream.config import load_feature_group, load_profile
from featurestream.dev.generator import ensure_topic, produce_kafka
from featurestream.engine.pipeline import dlq_events_path, start_source_query

HEAD = """
entity: {key: card_id}
event_time: {field: event_time}
source:
  type: kafka
  topic: TOPIC
  schema: {txn: string, card_id: string, merchant: string, amount: double, event_time: timestamp}
windows: {tile: 1m, allowed_lateness: 2m}
online_store: {feature_group_name: NAME, ttl: 7d}
"""
GROUPS = {
    "alpha": "features:\n  - {name: n, agg: count, windows: [5m]}\n"
             "  - {name: total, agg: sum, column: amount, windows: [2m, 5m]}\n",
    "beta": "transforms:\n  - filter: \"amount > 1\"\nfeatures:\n"
            "  - {name: hi, agg: max, column: amount, windows: [5m]}\n"
            "  - {name: where, agg: last, column: merchant}\n",
    "gamma": "transforms:\n  - dedupe: {key: txn, within: 5m}\nfeatures:\n"
             "  - {name: n, agg: count, windows: [2m]}\n  - {name: avg, agg: mean, column: amount, windows: [5m]}\n",
}


class Records:
    """A sink that keeps what it is given (the records' rows), for the comparison."""

    def __init__(self) -> None:
        self.rows: list[str] = []

    def write_batch(self, records: Any, batch_id: int, rows: int | None = None) -> None:
        self.rows += [json.dumps(row.asDict(), default=str, sort_keys=True) for row in records.collect()]


def _event(card: int, at: datetime, amount: float, txn: str) -> tuple[bytes, bytes]:
    body = {"txn": txn, "card_id": f"c{card}", "merchant": f"m{card % 3}", "amount": amount,
            "event_time": at.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return f"c{card}".encode(), json.dumps(body).encode()


def _rows(path: str) -> list[dict[str, Any]]:
    """A DLQ's rows but the time they were written."""
    table = pq.read_table(path)
    return table.drop_columns([c for c in table.column_names if c in ("batch_id", "dlq_time")]).to_pylist()


def test_three_groups_have_one_state_operator_and_the_records_of_each_alone(
        stack_env: dict[str, str], spark: Any, tmp_path: Path) -> None:
    topic = f"groups-{uuid.uuid4().hex[:8]}"
    specs = []
    for name, body in GROUPS.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(HEAD.replace("TOPIC", topic).replace("NAME", name) + body)
        specs.append(load_feature_group(path))
    base = load_profile("local")
    kafka = base.kafka.model_copy(update={"bootstrap_servers": stack_env["FEATURESTREAM_KAFKA_BOOTSTRAP"]})
    profiles = {run: base.model_copy(update={"checkpoint_root": str(tmp_path / run / "checkpoints"),
                                             "dlq_path": str(tmp_path / run / "dlq"), "kafka": kafka})
                for run in ("together", "alone")}
    ensure_topic(kafka.bootstrap_servers, topic, partitions=2)
    t0 = (datetime.now(UTC) - timedelta(hours=1)).replace(second=0, microsecond=0)
    # 6 cards over 4 minutes (the timer batch after them writes decay records), each card's first
    # event sent twice (gamma's 6 duplicates: the same event, so which copy is kept does not
    # matter), one invalid record.
    events = [_event(card, t0 + timedelta(seconds=40 * i), 0.5 + card + i, f"t{card}-{i}")
              for card in range(6) for i in range(7)]
    events += [*events[::7], (None, b"{not json")]
    produce_kafka(events, kafka.bootstrap_servers, topic)
    sinks: dict[str, dict[str, Records]] = {run: {spec.name: Records() for spec in specs} for run in profiles}
    metrics: dict[str, dict[str, Any]] = {run: {} for run in profiles}
    operators: list[int] = []
    # The four jobs at once (own checkpoints, sinks and DLQ folders): one wait instead of four.
    jobs = [(run, start_source_query(spark, job, profiles[run], available_now=True, sinks=sinks[run]))
            for run, job in [("together", specs), *[("alone", [spec]) for spec in specs]]]
    for run, started in jobs:
        started.query.awaitTermination()
        assert started.query.exception() is None, started.query.exception()
        for spec, counted in zip(started.specs, started.metrics, strict=True):
            metrics[run][spec.name] = counted.__dict__ | {"_lock": None}
        if run == "together":
            operators += [len(p["stateOperators"]) for p in started.query.recentProgress]

    assert operators and set(operators) == {1}
    assert metrics["together"]["gamma"]["duplicates"] == 6
    for spec in specs:
        assert sinks["together"][spec.name].rows, spec.name
        together, alone = sinks["together"][spec.name].rows, sinks["alone"][spec.name].rows
        assert sorted(together) == sorted(alone), (spec.name, set(together) ^ set(alone))
        assert metrics["together"][spec.name] == metrics["alone"][spec.name], spec.name
        together_dlq, alone_dlq = (_rows(dlq_events_path(spec, profiles[run])) for run in ("together", "alone"))
        assert together_dlq == alone_dlq and len(together_dlq) == 1, spec.name
