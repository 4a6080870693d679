"""Client-side rate limit: one token bucket per Python worker, shared by its writer threads.

A bucket admits `rate` calls per second on average and at most `burst` back to back. It is
kept as "the time the next token is due" (the GCRA form of a token bucket), so a caller learns
exactly how long to wait without a refill thread. Buckets live for the worker's lifetime
(PySpark reuses workers), so a budget holds across the tasks and micro-batches a worker runs.
"""

from __future__ import annotations

import threading
import time

from featurestream.connectors.writer.retry import Deadline


class TokenBucket:
    def __init__(self, rate: float, burst: float = 1.0) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.rate = rate
        self.interval = 1.0 / rate
        # How far ahead of real time the schedule may run: `burst` tokens' worth.
        self.tolerance = max(0.0, burst - 1.0) * self.interval
        # A new bucket starts full: `burst` calls may go at once.
        self._next = time.monotonic() - self.tolerance
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take one token; return how many seconds the caller must wait before using it."""
        with self._lock:
            now = time.monotonic()
            start = max(self._next, now - self.tolerance)
            self._next = start + self.interval
            return max(0.0, start - now)

    def acquire(self, deadline: Deadline | None = None) -> float:
        """Block until a call may go out; returns the seconds waited."""
        wait = self.reserve()
        if deadline is not None:
            deadline.sleep(wait, "waiting for the client-side rate limit")
        elif wait > 0:
            time.sleep(wait)
        return wait


_buckets: dict[tuple[str, float], TokenBucket] = {}
_buckets_lock = threading.Lock()


def worker_bucket(key: str, rate: float | None) -> TokenBucket | None:
    """The worker-wide bucket for `key` (a feature group) at `rate`; None means unlimited."""
    if rate is None:
        return None
    with _buckets_lock:
        bucket = _buckets.get((key, rate))
        if bucket is None:
            # A changed rate (another executor count) starts a fresh bucket for the new budget.
            for old in [k for k in _buckets if k[0] == key]:
                del _buckets[old]
            bucket = _buckets[(key, rate)] = TokenBucket(rate, burst=max(1.0, rate / 20.0))
        return bucket
