"""The durable state: feature groups, the online store and the offline replication queue.

One SQLite database in WAL mode. Every acknowledged write is committed before the response is
sent, and the offline row of a write is queued in the same transaction as its online upsert,
so a crash or restart loses neither. `synchronous=NORMAL` keeps commits off fsync: a committed
transaction survives the process dying (SIGKILL included), which is what a local emulator is
restarted through; only an OS crash could drop the last commits.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from featurestream.dev.feature_store.commit import GroupCommitter, StoreClosed
from featurestream.dev.feature_store.errors import Conflict, InUse, InvalidInput, NotFound
from featurestream.dev.feature_store.model import FeatureGroup, group_from_spec, name_from_arn
from featurestream.dev.feature_store.records import ValidRecord, Value

T = TypeVar("T")
log = logging.getLogger(__name__)
_AUTOCHECKPOINT_PAGES = 20_000
_UPSERT = (
    "INSERT INTO records VALUES (?, ?, ?, ?, 0, ?) "
    "ON CONFLICT (gid, record_id) DO UPDATE SET event_time = excluded.event_time, "
    "expires_at = excluded.expires_at, deleted = 0, vals = excluded.vals "
    "WHERE excluded.event_time > records.event_time "
    "OR (records.expires_at IS NOT NULL AND records.expires_at <= ?)"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feature_groups (
    gid INTEGER PRIMARY KEY AUTOINCREMENT,
    name_key TEXT NOT NULL,
    spec TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS feature_groups_live ON feature_groups(name_key) WHERE deleted = 0;
CREATE TABLE IF NOT EXISTS records (
    gid INTEGER NOT NULL,
    record_id TEXT NOT NULL,
    event_time REAL NOT NULL,
    expires_at REAL,
    deleted INTEGER NOT NULL DEFAULT 0,
    vals TEXT NOT NULL,
    PRIMARY KEY (gid, record_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS offline_queue (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    gid INTEGER NOT NULL,
    row TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS flush_plan (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq_hi INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class StoredRecord:
    record_id: str
    event_time: float
    expires_at: float | None
    deleted: bool
    values: dict[str, Value]

    def live(self, now: float) -> bool:
        """Visible to GetRecord: not soft-deleted and not past its ExpiresAt."""
        return not self.deleted and not self.expired(now)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass(frozen=True)
class PendingPut:
    """One validated write waiting for its transaction."""

    gid: int
    record: ValidRecord
    online: bool
    offline: bool
    expires_at: float | None


@dataclass(frozen=True)
class OfflineRow:
    """One offline-store row waiting in the queue."""

    seq: int
    gid: int
    values: dict[str, Value]
    event_time: float
    api_invocation_time: float
    is_deleted: bool


class Store:
    """Thread-safe access to the SQLite state; groups are also cached in memory.

    Writes go through a group committer on one connection; reads use a second connection,
    which in WAL mode sees every committed write without waiting for the writers.
    """

    def __init__(self, path: Path, region: str, account: str) -> None:
        self._region, self._account = region, account
        writer = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        writer.execute("PRAGMA journal_mode=WAL")
        writer.execute("PRAGMA synchronous=NORMAL")
        # Checkpoints fsync; a background thread runs them (see `checkpoint`), so the writers'
        # own automatic checkpoint is only a far-off safety net against an ever-growing WAL.
        writer.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
        writer.executescript(_SCHEMA)
        self._live: dict[str, int] = {}
        self._groups: dict[int, FeatureGroup] = {}
        for gid, name_key, spec, deleted in writer.execute(
            "SELECT gid, name_key, spec, deleted FROM feature_groups"
        ):
            self._groups[gid] = group_from_spec(json.loads(spec))
            if not deleted:
                self._live[name_key] = gid
        self._committer = GroupCommitter(writer)
        self._read_lock = threading.Lock()
        self._reader: sqlite3.Connection | None = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None
        )
        self._checkpointer: sqlite3.Connection | None = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None
        )
        self._checkpoint_lock = threading.Lock()
        self._stop = threading.Event()
        self._checkpoint_thread: threading.Thread | None = None

    # -- plumbing ---------------------------------------------------------------------------
    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return self._committer.run(fn)

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._read_lock:
            if self._reader is None:
                raise StoreClosed("The feature store emulator is shutting down.")
            yield self._reader

    def start_checkpoints(self, interval_s: float = 1.0) -> None:
        """Checkpoint the WAL every `interval_s` seconds off the request path."""

        def loop() -> None:
            while not self._stop.wait(interval_s):
                self.checkpoint()

        self._checkpoint_thread = threading.Thread(target=loop, name="wal-checkpoint", daemon=True)
        self._checkpoint_thread.start()

    def checkpoint(self) -> None:
        """A PASSIVE checkpoint: copies committed WAL frames without blocking any writer."""
        with self._checkpoint_lock:
            if self._checkpointer is not None:
                try:
                    self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:
                    # Busy or interrupted: the next tick (or the writer's safety net) catches up.
                    log.debug("checkpoint skipped: %s", exc)

    def close(self) -> None:
        self._stop.set()
        if self._checkpoint_thread is not None:
            self._checkpoint_thread.join()
        with self._checkpoint_lock:
            if self._checkpointer is not None:
                self._checkpointer.close()
                self._checkpointer = None
        writer = self._committer.close()
        if writer is not None:
            writer.close()
        with self._read_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    def commit_stats(self) -> dict[str, int]:
        return {"commits": self._committer.commits, "writes": self._committer.writes}

    # -- feature groups ---------------------------------------------------------------------
    def resolve(self, name_or_arn: Any) -> tuple[int, FeatureGroup]:
        """The live group for a name or ARN; NotFound otherwise."""
        if not isinstance(name_or_arn, str) or not name_or_arn:
            raise InvalidInput("FeatureGroupName is required.")
        key = name_from_arn(name_or_arn, self._region, self._account) or name_or_arn.lower()
        gid = self._live.get(key)
        if gid is None:
            raise NotFound(f"Resource Not Found: Amazon SageMaker can't find a FeatureGroup "
                           f"with name {name_or_arn}")
        return gid, self._groups[gid]

    def group_by_gid(self, gid: int) -> FeatureGroup:
        return self._groups[gid]

    def live_groups(self) -> list[FeatureGroup]:
        return [self._groups[gid] for gid in list(self._live.values())]

    def create_group(self, group: FeatureGroup) -> None:
        key = group.name.lower()

        def apply(conn: sqlite3.Connection) -> None:
            if key in self._live:
                raise InUse(f"Resource Already Exists: FeatureGroup with name {group.name} already exists. "
                            "Choose a different name.")
            cur = conn.execute(
                "INSERT INTO feature_groups(name_key, spec) VALUES (?, ?)", (key, json.dumps(group.spec))
            )
            gid = int(cur.lastrowid or 0)
            self._groups[gid] = group
            self._live[key] = gid

        self._write(apply)

    def replace_group(self, gid: int, group: FeatureGroup) -> None:
        def apply(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE feature_groups SET spec = ? WHERE gid = ?", (json.dumps(group.spec), gid))
            self._groups[gid] = group

        self._write(apply)

    def delete_group(self, gid: int) -> None:
        """Drop the group and its online records; queued offline rows are still flushed."""
        group = self._groups[gid]

        def apply(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE feature_groups SET deleted = 1 WHERE gid = ?", (gid,))
            conn.execute("DELETE FROM records WHERE gid = ?", (gid,))
            self._live.pop(group.name.lower(), None)

        self._write(apply)

    def online_size_bytes(self, gid: int) -> int:
        with self._read() as conn:
            row = conn.execute(
                "SELECT COALESCE(SUM(LENGTH(vals)), 0) FROM records WHERE gid = ?", (gid,)
            ).fetchone()
        return int(row[0])

    # -- records ----------------------------------------------------------------------------
    def get(self, gid: int, record_id: str) -> StoredRecord | None:
        with self._read() as conn:
            return _current(conn, gid, record_id)

    def put(
        self,
        gid: int,
        record: ValidRecord,
        *,
        online: bool,
        offline: bool,
        expires_at: float | None,
        api_time: float,
    ) -> bool:
        """Apply one write; True when the online store took it (its EventTime was newer)."""
        return self.put_many([PendingPut(gid, record, online, offline, expires_at)], api_time)[0]

    def put_many(self, puts: list[PendingPut], api_time: float) -> list[bool]:
        """Apply several writes in one transaction (a BatchWriteRecord); online-taken flags."""
        encoded = [json.dumps(p.record.values) for p in puts]

        def apply(conn: sqlite3.Connection) -> list[bool]:
            taken = []
            for put, values in zip(puts, encoded, strict=True):
                took = False
                if put.online:
                    # Upsert only over an older or expired record: the event-time rule in one statement.
                    cur = conn.execute(_UPSERT, (put.gid, put.record.record_id, put.record.event_time,
                                                 put.expires_at, values, api_time))
                    took = cur.rowcount > 0
                if put.offline:
                    _enqueue(conn, put.gid, values, put.record.event_time, api_time, False)
                taken.append(took)
            return taken

        return self._write(apply)

    def update(
        self,
        gid: int,
        group: FeatureGroup,
        record_id: str,
        changes: dict[str, Value],
        event_time: float | None,
        *,
        offline: bool,
        expires_at: float | None,
        keep_expiry: bool,
        api_time: float,
    ) -> StoredRecord:
        """UpdateRecord: merge `changes` into the live record (NotFound / Conflict as AWS)."""

        def apply(conn: sqlite3.Connection) -> StoredRecord:
            current = _current(conn, gid, record_id)
            if current is None or not current.live(api_time):
                raise NotFound(f"Record '{record_id}' does not exist in feature group '{group.name}'.")
            new_time = current.event_time if event_time is None else event_time
            if new_time < current.event_time:
                raise Conflict(
                    f"The EventTime of the update is older than the EventTime of record '{record_id}'."
                )
            merged = dict(current.values)
            merged.update(changes)
            new_expiry = current.expires_at if keep_expiry else expires_at
            values = json.dumps(merged)
            conn.execute(
                "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, 0, ?)",
                (gid, record_id, new_time, new_expiry, values),
            )
            if offline:
                _enqueue(conn, gid, values, new_time, api_time, False)
            return StoredRecord(record_id, new_time, new_expiry, False, merged)

        return self._write(apply)

    def delete(
        self,
        gid: int,
        group: FeatureGroup,
        record_id: str,
        event_time: float,
        raw_event_time: str,
        *,
        hard: bool,
        online: bool,
        offline: bool,
        api_time: float,
    ) -> None:
        """DeleteRecord as documented: an older EventTime leaves the online record in place."""
        marker = json.dumps({group.record_identifier: record_id, group.event_time: raw_event_time})

        def apply(conn: sqlite3.Connection) -> None:
            if online:
                current = _current(conn, gid, record_id)
                if current is not None and current.expired(api_time):
                    current = None
                stale = current is not None and event_time <= current.event_time
                if hard and stale:
                    raise InvalidInput(
                        f"EventTime: the delete EventTime must be later than the EventTime of record "
                        f"'{record_id}'."
                    )
                if not stale:
                    if hard:
                        conn.execute("DELETE FROM records WHERE gid = ? AND record_id = ?", (gid, record_id))
                    else:
                        conn.execute(
                            "INSERT OR REPLACE INTO records VALUES (?, ?, ?, NULL, 1, ?)",
                            (gid, record_id, event_time, marker),
                        )
            if offline:
                _enqueue(conn, gid, marker, event_time, api_time, True)

        self._write(apply)

    def list_ids(
        self, gid: int, after: str | None, limit: int, include_soft_deleted: bool, now: float
    ) -> list[str]:
        sql = "SELECT record_id FROM records WHERE gid = ? AND (expires_at IS NULL OR expires_at > ?)"
        args: list[Any] = [gid, now]
        if not include_soft_deleted:
            sql += " AND deleted = 0"
        if after is not None:
            sql += " AND record_id > ?"
            args.append(after)
        sql += " ORDER BY record_id LIMIT ?"
        args.append(limit)
        with self._read() as conn:
            return [r[0] for r in conn.execute(sql, args)]

    # -- offline queue ----------------------------------------------------------------------
    def plan_flush(self, max_rows: int) -> int | None:
        """Fix the queue prefix the next flush writes (replayed unchanged after a crash)."""

        def apply(conn: sqlite3.Connection) -> int | None:
            row = conn.execute("SELECT seq_hi FROM flush_plan WHERE id = 1").fetchone()
            if row is not None:
                return int(row[0])
            lo_hi = conn.execute("SELECT MIN(seq), MAX(seq) FROM offline_queue").fetchone()
            if lo_hi[0] is None:
                return None
            seq_hi = min(int(lo_hi[1]), int(lo_hi[0]) + max_rows - 1)
            conn.execute("INSERT INTO flush_plan(id, seq_hi) VALUES (1, ?)", (seq_hi,))
            return seq_hi

        return self._write(apply)

    def planned_rows(self, seq_hi: int) -> list[OfflineRow]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT seq, gid, row FROM offline_queue WHERE seq <= ? ORDER BY seq", (seq_hi,)
            ).fetchall()
        out = []
        for seq, gid, raw in rows:
            data = json.loads(raw)
            out.append(OfflineRow(seq, gid, data["v"], data["t"], data["a"], data["d"]))
        return out

    def complete_flush(self, seq_hi: int) -> None:
        def apply(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM offline_queue WHERE seq <= ?", (seq_hi,))
            conn.execute("DELETE FROM flush_plan WHERE id = 1")

        self._write(apply)

    def queued_rows(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM offline_queue").fetchone()[0])


def _current(conn: sqlite3.Connection, gid: int, record_id: str) -> StoredRecord | None:
    row = conn.execute(
        "SELECT event_time, expires_at, deleted, vals FROM records WHERE gid = ? AND record_id = ?",
        (gid, record_id),
    ).fetchone()
    if row is None:
        return None
    return StoredRecord(record_id, row[0], row[1], bool(row[2]), json.loads(row[3]))


def _enqueue(
    conn: sqlite3.Connection,
    gid: int,
    values_json: str,
    event_time: float,
    api_time: float,
    is_deleted: bool,
) -> None:
    # The values are spliced in already serialised, to encode each record only once.
    row = f'{{"v":{values_json},"t":{event_time!r},"a":{api_time!r},"d":{"true" if is_deleted else "false"}}}'
    conn.execute("INSERT INTO offline_queue(gid, row) VALUES (?, ?)", (gid, row))
