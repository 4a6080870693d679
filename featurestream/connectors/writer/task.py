"""The `mapInArrow` body: one Spark task writes its partition and reports back to the driver.

The task yields one Arrow batch of (kind, payload) rows: `metrics` (its counters as JSON) and
one `dlq` row per dead-lettered record. Rejected records are rare by nature, and the driver
caps how many it accepts per batch (`dlq_max_records_per_batch`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from featurestream.connectors.writer.dedup import RECORDS_IN
from featurestream.connectors.writer.partition_writer import PartitionWriter
from featurestream.connectors.writer.plan import WritePlan
from featurestream.connectors.writer.records import Record, records_from_batch
from featurestream.connectors.writer.redact import install_redaction

RESULT_SCHEMA = "kind string, payload string"


def write_partition(
    plan: WritePlan, batches: Iterator[pa.RecordBatch], client: Any | None = None
) -> Iterator[pa.RecordBatch]:
    install_redaction()
    writer = PartitionWriter(plan, client)
    target = plan.target

    def records() -> Iterator[Record]:
        for batch in batches:
            if RECORDS_IN in batch.schema.names:
                count = pc.sum(batch.column(batch.schema.get_field_index(RECORDS_IN))).as_py()
                writer.metrics.add(records_in=int(count or 0))
            else:
                writer.metrics.add(records_in=batch.num_rows)
            yield from records_from_batch(batch, target.record_identifier, target.event_time_feature,
                                          target.feature_names)

    started = time.perf_counter()
    writer.write(records())
    writer.metrics.add(task_s=time.perf_counter() - started)
    kinds = ["metrics"] + ["dlq"] * len(writer.dlq)
    payloads = [json.dumps(writer.metrics.to_dict())] + [entry.to_json() for entry in writer.dlq]
    yield pa.RecordBatch.from_pydict({"kind": kinds, "payload": payloads})
