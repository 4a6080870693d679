"""Per-batch writer metrics: counted on the executors, merged on the driver, logged as one line.

`BatchMetrics.to_dict()` is the JSON line and what the operations endpoint serves (`history`).
Latency is the round trip of one API call attempt (PutRecord or BatchWriteRecord), in ms.
"""

from __future__ import annotations

import math
import random
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

# Latencies kept per partition; past this, a uniform sample (reservoir) stands for them all.
LATENCY_SAMPLE = 20_000


@dataclass
class PartitionMetrics:
    """What one task did; thread-safe counters, merged by the driver."""

    records_in: int = 0
    records: int = 0
    written: int = 0
    dlq: int = 0
    calls: int = 0
    retries: int = 0
    throttles: int = 0
    fallbacks: int = 0
    rate_wait_s: float = 0.0
    # Wall time of the task's writing (records built, calls made), without Spark's share.
    task_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    _seen: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _rng: random.Random = field(default_factory=lambda: random.Random(0), repr=False, compare=False)

    def add(self, **counts: float) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def call(self, latency_ms: float) -> None:
        with self._lock:
            self.calls += 1
            self._seen += 1
            if len(self.latencies_ms) < LATENCY_SAMPLE:
                self.latencies_ms.append(latency_ms)
            else:
                slot = self._rng.randrange(self._seen)
                if slot < LATENCY_SAMPLE:
                    self.latencies_ms[slot] = latency_ms

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "records_in": self.records_in, "records": self.records, "written": self.written,
                "dlq": self.dlq, "calls": self.calls, "retries": self.retries, "throttles": self.throttles,
                "fallbacks": self.fallbacks, "rate_wait_s": round(self.rate_wait_s, 6),
                "task_s": round(self.task_s, 6),
                "latencies_ms": [round(x, 3) for x in self.latencies_ms],
            }


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q * len(ordered) / 100.0)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class BatchMetrics:
    """One micro-batch's write. `records_in` counts input rows, `entities` the records sent
    (latest per entity); `records_written + dlq == entities` for every batch that succeeds."""

    feature_group: str
    batch_id: int
    sink: str
    mode: str
    records_in: int
    entities: int
    records_written: int
    dlq: int
    calls: int | None
    retries: int | None
    throttles: int | None
    fallbacks: int
    latency_ms_p50: float | None
    latency_ms_p99: float | None
    seconds: float
    # The slowest task's writing time; `seconds - write_seconds` is Spark's part (plan, dedup).
    write_seconds: float | None
    partitions: int
    worker_tps_budget: float | None
    rate_wait_s: float | None
    # Where the writes ran: "executors" (Spark tasks) or "driver" (a small batch).
    where: str = "executors"

    @property
    def records_per_s(self) -> float:
        return self.entities / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["records_per_s"] = round(self.records_per_s, 1)
        return out


def merge_partitions(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Sum the partitions' counters and pool their latency samples."""
    total: dict[str, Any] = {"records_in": 0, "records": 0, "written": 0, "dlq": 0, "calls": 0,
                             "retries": 0, "throttles": 0, "fallbacks": 0, "rate_wait_s": 0.0,
                             "latencies_ms": [], "partitions": 0, "task_s": 0.0}
    for part in parts:
        total["partitions"] += 1
        for key, value in part.items():
            if key == "latencies_ms":
                total[key].extend(value)
            elif key == "task_s":
                total[key] = max(total[key], value)
            elif key in total:
                total[key] += value
    return total


class MetricsHistory:
    """The last batches per feature group plus running totals, for the metrics endpoint."""

    def __init__(self, keep: int = 100) -> None:
        self._keep = keep
        self._recent: dict[str, deque[BatchMetrics]] = {}
        self._totals: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def record(self, metrics: BatchMetrics) -> None:
        with self._lock:
            self._recent.setdefault(metrics.feature_group, deque(maxlen=self._keep)).append(metrics)
            totals = self._totals.setdefault(metrics.feature_group, {})
            for key in ("records_in", "entities", "records_written", "dlq", "calls", "retries", "throttles"):
                totals[key] = totals.get(key, 0) + (getattr(metrics, key) or 0)
            totals["batches"] = totals.get("batches", 0) + 1

    def recent(self, feature_group: str) -> list[BatchMetrics]:
        with self._lock:
            return list(self._recent.get(feature_group, ()))

    def totals(self, feature_group: str) -> dict[str, float]:
        with self._lock:
            return dict(self._totals.get(feature_group, {}))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                fg: {"totals": dict(self._totals[fg]), "last": batches[-1].to_dict() if batches else None}
                for fg, batches in self._recent.items()
            }


# The driver's history; the operations issue's metrics endpoint reads it.
history = MetricsHistory()
