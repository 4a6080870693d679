"""Freshness: how long after its event time an event's effect is visible in the online store.

An event with event time e, read in a micro-batch whose write returned at F, is visible from F on,
so its freshness is F - e. Spark reports per batch the oldest, mean and newest event time of the
events it read (`eventTime.min/avg/max`) and when the batch ended, not every event time; the
listener therefore spreads a batch's events evenly between its newest and oldest (exact for a
steady stream, and the bounds F - max and F - min are exact always). A writer that knows each
record's event time can call `FreshnessWindow.add` with exact ages instead.

Quantiles are over the events of a recent period (weighted by events, not by batches), and a
cumulative histogram with event counts is kept for Prometheus.
"""

from __future__ import annotations

import bisect
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client.utils import floatToGoString

from featurestream.ops.progress import BatchProgress

# Seconds; from a fast local trigger (fine below 5 s, where a sub-second goal needs
# `histogram_quantile` to be close) to a backlog replayed after a long outage.
BUCKETS: tuple[float, ...] = (0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600,
                              4 * 3600, 24 * 3600)
# Points a batch's events are spread over: enough for p99 within ~1% of the batch's range.
POINTS_PER_BATCH = 64


@dataclass(frozen=True)
class Sample:
    at: float
    age_s: float
    weight: float


def batch_ages(progress: BatchProgress, points: int = POINTS_PER_BATCH) -> tuple[list[float], float]:
    """(ages, weight of each) for one batch's events; empty when the batch read no timed events."""
    if progress.input_rows <= 0 or progress.event_time_min is None or progress.event_time_max is None:
        return [], 0.0
    newest = progress.finished - progress.event_time_max
    oldest = progress.finished - progress.event_time_min
    count = max(1, min(points, progress.input_rows))
    if count == 1 or oldest <= newest:
        return [newest], float(progress.input_rows)
    step = (oldest - newest) / (count - 1)
    return [newest + i * step for i in range(count)], progress.input_rows / count


class FreshnessWindow:
    """Weighted ages of recent events, plus an all-time cumulative histogram."""

    def __init__(self, window_s: float, max_samples: int = 50_000,
                 buckets: Sequence[float] = BUCKETS) -> None:
        self.window_s = window_s
        self.buckets = tuple(buckets)
        self._samples: deque[Sample] = deque(maxlen=max_samples)
        self._bucket_weights = [0.0] * (len(self.buckets) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def add(self, at: float, ages: Sequence[float], weight: float = 1.0) -> None:
        with self._lock:
            for age in ages:
                age = max(0.0, age)
                self._samples.append(Sample(at, age, weight))
                self._bucket_weights[bisect.bisect_left(self.buckets, age)] += weight
                self._sum += age * weight

    def quantile(self, q: float, now: float) -> float | None:
        """The q-quantile (0..1) of the ages of events seen in the last `window_s`; None if none."""
        with self._lock:
            while self._samples and self._samples[0].at < now - self.window_s:
                self._samples.popleft()
            recent = sorted((s.age_s, s.weight) for s in self._samples)
        total = sum(weight for _, weight in recent)
        if total <= 0:
            return None
        target, running = q * total, 0.0
        for age, weight in recent:
            running += weight
            if running >= target:
                return age
        return recent[-1][0]

    def histogram(self) -> tuple[list[tuple[str, float]], float]:
        """Cumulative (le, count) buckets ending with +Inf, and the sum of ages."""
        with self._lock:
            weights, total = list(self._bucket_weights), self._sum
        out: list[tuple[str, float]] = []
        running = 0.0
        for bound, weight in zip([*map(floatToGoString, self.buckets), "+Inf"], weights, strict=True):
            running += weight
            out.append((bound, running))
        return out, total
