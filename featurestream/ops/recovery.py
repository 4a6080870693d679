"""How many times a failed streaming job may restart its queries, and how long it waits first."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class RestartBudget:
    """At most `max_restarts` within `window_s`; the wait doubles from `backoff_s` to `backoff_max_s`.

    The doubling restarts from `backoff_s` once every earlier failure has aged out of the window.
    """

    max_restarts: int
    window_s: float
    backoff_s: float
    backoff_max_s: float
    _failures: deque[float] = field(default_factory=deque)

    def next_wait(self, now: float) -> float | None:
        """Record a failure at `now`; the seconds to wait before restarting, or None: give up."""
        while self._failures and self._failures[0] <= now - self.window_s:
            self._failures.popleft()
        if len(self._failures) >= self.max_restarts:
            return None
        wait = min(self.backoff_max_s, self.backoff_s * 2 ** len(self._failures))
        self._failures.append(now)
        return wait

    @property
    def used(self) -> int:
        return len(self._failures)
