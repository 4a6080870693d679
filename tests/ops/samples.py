"""Progress JSON as Spark 3.5 writes it (shape taken from a real run of the features query)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

# The batch starts a minute before the suite runs, never on a fixed date: freshness quantiles keep
# only the batches of their recent window (counted from now), so an old batch would be dropped.
START = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)


def at(offset_s: float) -> str:
    """START + offset_s as Spark writes times in progress JSON (`2026-11-26T10:00:00.000Z`)."""
    return (START + timedelta(seconds=offset_s)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def progress(batch_id: int = 3, *, started: str = at(0), duration_ms: int = 4000,
             rows: int = 500, event_min: str | None = at(-10),
             event_avg: str | None = at(-5), event_max: str | None = at(0),
             watermark: str = at(-300), name: str = "card_activity-features",
             observed: dict[str, Any] | None = None, dropped: int = 0) -> dict[str, Any]:
    event_time: dict[str, str] = {"watermark": watermark}
    for key, value in (("min", event_min), ("avg", event_avg), ("max", event_max)):
        if value is not None:
            event_time[key] = value
    return {
        "id": "1eadeee5-718a-4161-b038-af907f76618d", "runId": "eba01a5f-b0f7-4e01-9982-57d1276fbab4",
        "name": name, "timestamp": started, "batchId": batch_id, "batchDuration": duration_ms,
        "numInputRows": rows, "inputRowsPerSecond": 120.5, "processedRowsPerSecond": "NaN",
        "durationMs": {"addBatch": duration_ms - 500, "commitOffsets": 100, "getBatch": 0, "latestOffset": 20,
                       "queryPlanning": 80, "triggerExecution": duration_ms, "walCommit": 200},
        "eventTime": event_time,
        "stateOperators": [{
            "operatorName": "stateStoreSave", "numRowsTotal": 180, "numRowsUpdated": 40, "memoryUsedBytes": 2101440,
            "numRowsDroppedByWatermark": dropped, "commitTimeMs": 150, "customMetrics": {"rocksdbBytesCopied": 1000},
        }],
        "sources": [{
            "description": "KafkaV2[Subscribe[payments]]", "startOffset": {"payments": {"0": 10}},
            "endOffset": {"payments": {"0": 510}}, "latestOffset": {"payments": {"0": 900}}, "numInputRows": rows,
            "metrics": {"avgOffsetsBehindLatest": "195.0", "maxOffsetsBehindLatest": "390",
                        "minOffsetsBehindLatest": "0"},
        }],
        "sink": {"description": "ForeachBatchSink", "numOutputRows": -1},
        "observedMetrics": observed or {},
    }
