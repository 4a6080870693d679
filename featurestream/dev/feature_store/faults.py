"""Injected latency, throttling, 5xx errors and a per-record-identifier write limit.

Every random decision comes from one seeded generator, so a run with the same seed and the
same sequence of calls sees the same faults.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass

from featurestream.dev.feature_store.errors import InternalFailure, Throttled, Unavailable


@dataclass(frozen=True)
class FaultSettings:
    latency_ms: float = 0.0
    throttle_rate: float = 0.0
    error_rate: float = 0.0
    unprocessed_rate: float = 0.0
    record_write_limit: int | None = None
    seed: int = 0


class Faults:
    """Decides, per call and per record, whether to delay, throttle or fail it."""

    def __init__(self, settings: FaultSettings) -> None:
        self.settings = settings
        self._rng = random.Random(settings.seed)
        self._lock = threading.Lock()
        self._window = -1
        self._writes: dict[tuple[int, str], int] = {}
        # Counts of injected faults, reported by /health so tests can see they happened.
        self.counts = {"throttled": 0, "errors": 0, "unprocessed": 0, "write_limited": 0}

    def on_call(self) -> None:
        """Run at the start of every runtime call: sleep, then maybe raise a throttle or 5xx."""
        s = self.settings
        if s.latency_ms > 0:
            time.sleep(s.latency_ms / 1000.0)
        if s.throttle_rate <= 0 and s.error_rate <= 0:
            return
        with self._lock:
            throttle = self._rng.random() < s.throttle_rate
            error = self._rng.random() < s.error_rate
            unavailable = self._rng.random() < 0.5
            if throttle:
                self.counts["throttled"] += 1
            elif error:
                self.counts["errors"] += 1
        if throttle:
            raise Throttled("Rate exceeded (injected by the emulator's --throttle-rate).")
        if error:
            if unavailable:
                raise Unavailable("Service unavailable (injected by the emulator's --error-rate).")
            raise InternalFailure("Internal failure (injected by the emulator's --error-rate).")

    def skip_entry(self) -> bool:
        """True when a batch entry should come back unprocessed (--unprocessed-rate)."""
        if self.settings.unprocessed_rate <= 0:
            return False
        with self._lock:
            skip = self._rng.random() < self.settings.unprocessed_rate
            self.counts["unprocessed"] += skip
            return skip

    def admit_write(self, gid: int, record_id: str) -> bool:
        """Count one write to a record identifier; False past the per-second limit."""
        limit = self.settings.record_write_limit
        if limit is None:
            return True
        second = int(time.monotonic())
        with self._lock:
            if second != self._window:
                self._window = second
                self._writes.clear()
            key = (gid, record_id)
            count = self._writes.get(key, 0)
            if count >= limit:
                self.counts["write_limited"] += 1
                return False
            self._writes[key] = count + 1
            return True
