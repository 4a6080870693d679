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
        )

    def log_fields(self) -> dict[str, Any]:
        """The JSON log line of this batch (query and batch ids first, for grepping)."""
        out: dict[str, Any] = {
            "event": "batch_progress", "query": self.name, "query_id": self.query_id, "run_id": self.run_id,
            "batch_id": self.batch_id, "input_rows": self.input_rows, "duration_s": round(self.duration_s, 3),
            "input_rows_per_s": round(self.input_rows_per_s, 1),
            "processed_rows_per_s": round(self.processed_rows_per_s, 1),
        }
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
        return out


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
