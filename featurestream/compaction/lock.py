"""One run per feature group at a time: a lock object beside the table, with a heartbeat.

`_compaction/lock.json` is created only if absent. While the run works, a thread rewrites it
every `heartbeat_s` seconds (compare-and-swap against our own last version). Another run that
finds the lock with a heartbeat older than `stale_after_s` (its owner was killed) takes it over
with a compare-and-swap against the stale version, so of several runs racing for a stale lock
exactly one wins. The owner checks it still holds the lock just before it commits; a run that
lost its lock (its heartbeat stalled past the timeout) fails instead of committing.

Staleness compares the owner's clock with ours: keep hosts NTP-synchronised and the timeout
well above any clock skew.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from featurestream.compaction.errors import LockBusyError, LockLostError, PreconditionFailed
from featurestream.compaction.storage import StateStore
from featurestream.connectors.offline_store import StoreUri

log = logging.getLogger(__name__)

LOCK_PATH = "_compaction/lock.json"


@dataclass(frozen=True)
class LockInfo:
    run_id: str
    host: str
    pid: int
    acquired_at: float
    heartbeat_at: float

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> LockInfo | None:
        try:
            raw = json.loads(data)
            return cls(str(raw["run_id"]), str(raw["host"]), int(raw["pid"]), float(raw["acquired_at"]),
                       float(raw["heartbeat_at"]))
        except (ValueError, KeyError, TypeError):
            return None  # unreadable: treated as stale


class CompactionLock:
    def __init__(
        self,
        store: StateStore,
        root: StoreUri,
        run_id: str,
        *,
        stale_after_s: float,
        heartbeat_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.uri = root.join(LOCK_PATH)
        self.run_id = run_id
        self.stale_after_s = stale_after_s
        self.heartbeat_s = heartbeat_s
        self.clock = clock
        self.took_over: LockInfo | None = None
        self._token: str | None = None
        self._token_lock = threading.Lock()
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _info(self, acquired_at: float | None = None) -> LockInfo:
        now = self.clock()
        return LockInfo(self.run_id, socket.gethostname(), os.getpid(), acquired_at or now, now)

    def acquire(self) -> None:
        """Take the lock or raise LockBusyError naming the holder."""
        info = self._info()
        token = self.store.create(self.uri, info.encode())
        if token is None:
            current = self.store.read(self.uri)
            if current is None:  # released between our two calls: try once more
                token = self.store.create(self.uri, info.encode())
            else:
                holder = LockInfo.decode(current.data)
                age = self.clock() - holder.heartbeat_at if holder else float("inf")
                if holder is not None and age <= self.stale_after_s:
                    raise LockBusyError(
                        f"{self.uri} is held by run {holder.run_id} (pid {holder.pid} on {holder.host}, "
                        f"heartbeat {age:.0f}s ago; stale after {self.stale_after_s:.0f}s)"
                    )
                try:
                    token = self.store.replace(self.uri, info.encode(), current.token)
                except PreconditionFailed as exc:
                    raise LockBusyError(f"{self.uri}: another run took over the stale lock first") from exc
                self.took_over = holder
                log.warning("took over a stale lock of run %s (heartbeat %.0fs ago)",
                            holder.run_id if holder else "?", age)
            if token is None:
                raise LockBusyError(f"{self.uri} was taken by another run")
        self._token = token
        self._acquired_at = info.acquired_at
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="compaction-lock-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            with self._token_lock:
                if self._token is None:
                    return
                try:
                    self._token = self.store.replace(self.uri, self._info(self._acquired_at).encode(), self._token)
                except PreconditionFailed:
                    self._lost = "the lock object was replaced by another run"
                    log.error("compaction lock %s lost: %s", self.uri, self._lost)
                    return
                except Exception as exc:
                    # A transient storage error: the next beat retries; staleness is what matters.
                    log.warning("lock heartbeat failed: %s", exc)

    def ensure_held(self) -> None:
        """Raise LockLostError unless the lock object is still ours (checked on the store)."""
        if self._lost:
            raise LockLostError(f"{self.uri}: {self._lost}")
        with self._token_lock:
            current = self.store.read(self.uri)
            if current is None or current.token != self._token:
                self._lost = "the lock object changed"
                raise LockLostError(f"{self.uri}: the lock is no longer held by run {self.run_id}")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._token_lock:
            token, self._token = self._token, None
        if token is not None and not self._lost:
            try:
                self.store.delete(self.uri, expected=token)
            except PreconditionFailed:
                log.warning("lock %s was taken over before release; left to its new owner", self.uri)

    def __enter__(self) -> CompactionLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
