"""One micro-batch's `StreamingQueryProgress` (its JSON) as a small typed value.

Pure Python, so the listener's arithmetic is testable without Spark. Times are epoch seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Watermark before the first event: Spark reports the epoch.
_NO_WATERMARK = 0.0


def _instant(text: object) -> float | None:
    """Spark's `2026-11-26T04:39:52.814Z` → epoch seconds; None when absent."""
    if not isinstance(text, str) or not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _number(value: object) -> float:
    """Spark writes NaN rates as strings or nulls when a batch had no time to measure."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
    return number if number == number else 0.0


@dataclass(frozen=True)
class BatchProgress:
    query_id: str
    run_id: str
    name: str
    batch_id: int
    started: float
    duration_s: float
    input_rows: int
    input_rows_per_s: float
    processed_rows_per_s: float
    event_time_min: float | None = None
    event_time_avg: float | None = None
    event_time_max: float | None = None
    watermark: float | None = None
    state_rows: int = 0
    state_memory_bytes: int = 0
    dropped_by_watermark: int = 0
    offsets_behind_latest: float | None = None
    observed: dict[str, dict[str, float]] = field(default_factory=dict)
    # Kafka records in the batch's offset ranges that were not read: deleted before the job got to
    # them (retention) and skipped because failOnDataLoss is false. See `kafka_lost`.
    lost_records: int = 0
    # topic → partition → [start, end) of the batch's ranges on the partitions where records were lost.
    lost_ranges: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    # Where the trigger's time went (Spark's durationMs in seconds, without the total): addBatch
    # (the foreachBatch body), walCommit (offset log), commitOffsets (commit log), latestOffset, ...
    phases_s: dict[str, float] = field(default_factory=dict)
    # The state stores' commit (RocksDB changelog upload), summed over the stateful operators.
    state_commit_s: float = 0.0

    @property
    def finished(self) -> float:
        """When the batch's sink write had returned: the records are visible from here on."""
        return self.started + self.duration_s

    @property
    def label(self) -> str:
        return self.name or self.query_id

    @classmethod
    def from_json(cls, text: str) -> BatchProgress:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchProgress:
        durations = data.get("durationMs") or {}
        event_time = data.get("eventTime") or {}
        operators = data.get("stateOperators") or []
        behind = [
            _number(metrics.get("maxOffsetsBehindLatest"))
            for source in data.get("sources") or []
            if isinstance(metrics := source.get("metrics"), dict) and "maxOffsetsBehindLatest" in metrics
        ]
        watermark = _instant(event_time.get("watermark"))
        lost, lost_ranges = kafka_lost(data.get("sources") or [])
        observed = {
            name: {key: _number(value) for key, value in (row or {}).items() if _is_number(value)}
            for name, row in (data.get("observedMetrics") or {}).items()
        }
        return cls(
            query_id=str(data.get("id", "")),
            run_id=str(data.get("runId", "")),
            name=str(data.get("name") or ""),
            batch_id=int(data.get("batchId", -1)),
            started=_instant(data.get("timestamp")) or 0.0,
            duration_s=_number(durations.get("triggerExecution")) / 1000.0,
            input_rows=int(_number(data.get("numInputRows"))),
            input_rows_per_s=_number(data.get("inputRowsPerSecond")),
            processed_rows_per_s=_number(data.get("processedRowsPerSecond")),
            event_time_min=_instant(event_time.get("min")),
            event_time_avg=_instant(event_time.get("avg")),
            event_time_max=_instant(event_time.get("max")),
            watermark=None if watermark in (None, _NO_WATERMARK) else watermark,
            state_rows=sum(int(_number(op.get("numRowsTotal"))) for op in operators),
            state_memory_bytes=sum(int(_number(op.get("memoryUsedBytes"))) for op in operators),
            dropped_by_watermark=sum(int(_number(op.get("numRowsDroppedByWatermark"))) for op in operators),
            offsets_behind_latest=max(behind) if behind else None,
            observed=observed,
            lost_records=lost,
            lost_ranges=lost_ranges,
            phases_s={k: round(_number(v) / 1000.0, 3) for k, v in durations.items() if k != "triggerExecution"},
            state_commit_s=round(sum(_number(op.get("commitTimeMs")) for op in operators) / 1000.0, 3),
        )

    def log_fields(self) -> dict[str, Any]:
        """The JSON log line of this batch (query and batch ids first, for grepping)."""
        out: dict[str, Any] = {
            "event": "batch_progress", "query": self.name, "query_id": self.query_id, "run_id": self.run_id,
            "batch_id": self.batch_id, "input_rows": self.input_rows, "duration_s": round(self.duration_s, 3),
            "input_rows_per_s": round(self.input_rows_per_s, 1),
            "processed_rows_per_s": round(self.processed_rows_per_s, 1),
        }
        if self.phases_s:
            out["phases_s"] = self.phases_s
        if self.state_commit_s:
            out["state_commit_s"] = self.state_commit_s
        if self.watermark is not None:
            out["watermark_lag_s"] = round(self.finished - self.watermark, 3)
        if self.event_time_max is not None:
            out["newest_event_age_s"] = round(self.finished - self.event_time_max, 3)
        if self.state_rows:
            out["state_rows"] = self.state_rows
        if self.dropped_by_watermark:
            out["dropped_by_watermark"] = self.dropped_by_watermark
        if self.offsets_behind_latest is not None:
            out["offsets_behind_latest"] = self.offsets_behind_latest
        if self.observed:
            out["observed"] = self.observed
        if self.lost_records:
            out["lost_records"] = self.lost_records
        return out


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _offsets(value: object) -> dict[str, dict[str, int]] | None:
    """A Kafka source's offsets in the progress (`{"topic": {"0": 42}}`, or that JSON as text)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, dict):
        return None
    offsets: dict[str, dict[str, int]] = {}
    for topic, partitions in value.items():
        if not isinstance(partitions, dict):
            return None
        offsets[str(topic)] = {str(p): int(o) for p, o in partitions.items() if isinstance(o, int)}
    return offsets


def kafka_lost(sources: list[dict[str, Any]]) -> tuple[int, dict[str, dict[str, list[int]]]]:
    """(records lost, the ranges they were in) over the batch's Kafka sources.

    Spark plans a batch as the offset ranges [previous end, new end) per partition. With
    failOnDataLoss=false, a range whose first records were deleted (retention) is read from the
    earliest offset still there, silently: the batch then reads fewer records than its ranges
    hold, and the difference is what was lost. Exact for plain topics; in a transactional topic
    the commit markers also take offsets and would count here. A batch that starts reading a new
    partition (no previous end) is left out: its start is not in the progress.
    """
    lost = 0
    ranges: dict[str, dict[str, list[int]]] = {}
    for source in sources:
        if not str(source.get("description", "")).startswith("KafkaV2"):
            continue
        start, end = _offsets(source.get("startOffset")), _offsets(source.get("endOffset"))
        if start is None or end is None:
            continue  # the query's first batch: it starts where the topic starts
        spans: dict[str, dict[str, list[int]]] = {}
        known = True
        for topic, partitions in end.items():
            for partition, until in partitions.items():
                begin = start.get(topic, {}).get(partition)
                if begin is None or begin < 0:
                    known = False
                elif until > begin:
                    spans.setdefault(topic, {})[partition] = [begin, until]
        if not known:
            continue
        offered = sum(b - a for span in spans.values() for a, b in span.values())
        missing = offered - int(_number(source.get("numInputRows")))
        if missing > 0:
            lost += missing
            for topic, span in spans.items():
                ranges.setdefault(topic, {}).update(span)
    return lost, ranges
