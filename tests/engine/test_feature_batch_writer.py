"""FeatureBatchWriter as a query's foreachBatch body over several micro-batches.

The body builds its counters' columns at the first micro-batch and reuses them for every later
one (py4j look-ups per batch); each batch's counters and records must still be that batch's own.
Three micro-batches (one Parquet file each), entities overlapping across them, all within one
hour: the expected records (one per entity seen in the batch, `n` = its events so far in the 1h
window) come from counting the events here.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from featurestream.config import load_feature_group
from featurestream.engine import aggregation
from featurestream.engine.pipeline import FeatureBatchWriter, feature_stream

GROUP = """
entity: {key: card_id, type: string}
event_time: {field: event_time}
source:
  type: kafka
  topic: unused
  format: json
  schema: {card_id: string, amount: double, event_time: timestamp}
windows: {tile: 1m, allowed_lateness: 5m}
features:
  - {name: n, agg: count, windows: [1h]}
online_store: {feature_group_name: batch-writer}
"""
# Events per micro-batch: (card, second within the batch's minute).
BATCHES = [
    [("a", 1), ("a", 2), ("b", 3)],
    [("b", 1), ("c", 2), ("c", 3), ("c", 4)],
    [("a", 5), ("d", 6)],
]


class _Records:
    """A RecordSink that keeps what each micro-batch wrote."""

    def __init__(self) -> None:
        self.batches: dict[int, list[tuple[str, int]]] = {}

    def write_batch(self, records: Any, batch_id: int, rows: int | None = None) -> None:
        self.batches[batch_id] = sorted((r["card_id"], int(r["n_1h"])) for r in records.collect())


def test_each_micro_batch_counts_and_writes_its_own_records(spark: Any, tmp_path: Path) -> None:
    group = tmp_path / "cards.yaml"
    group.write_text(GROUP)
    spec = load_feature_group(group)
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)
    source = tmp_path / "events"
    source.mkdir()
    for index, events in enumerate(BATCHES):
        minute = start + timedelta(minutes=index)
        rows = [(card, 1.0, minute + timedelta(seconds=second)) for card, second in events]
        written = tmp_path / f"written-{index}"
        spark.createDataFrame(rows, "card_id string, amount double, event_time timestamp").coalesce(1).write.parquet(
            str(written)
        )
        # One file per micro-batch, in this order (the file source takes the oldest first).
        target = source / f"{index}.parquet"
        next(written.glob("part-*.parquet")).rename(target)
        os.utime(target, (1_700_000_000 + index, 1_700_000_000 + index))
    checkpoint = str(tmp_path / "checkpoint")
    sink = _Records()
    writer = FeatureBatchWriter(spec, sink, str(tmp_path / "late"), checkpoint=checkpoint)
    stream = (
        spark.readStream.schema("card_id string, amount double, event_time timestamp")
        .option("maxFilesPerTrigger", 1)
        .parquet(str(source))
    )
    writer.event_type = aggregation.event_type(stream)
    query = (
        feature_stream(stream, spec)
        .writeStream.outputMode("update")
        .foreachBatch(writer)
        .option("checkpointLocation", checkpoint)
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination()

    seen: Counter[str] = Counter()
    expected: dict[int, list[tuple[str, int]]] = {}
    for index, events in enumerate(BATCHES):
        seen.update(card for card, _ in events)
        expected[index] = sorted((card, seen[card]) for card in {card for card, _ in events})
    data = {batch: rows for batch, rows in sink.batches.items() if rows}
    assert sorted(data.values()) == sorted(expected.values())
    assert writer.metrics.aggregated == sum(len(events) for events in BATCHES)
    assert writer.metrics.records == sum(len(rows) for rows in expected.values())
    assert writer.metrics.late_events == 0
