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
import time
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
_ENQUEUE = "INSERT INTO offline_queue(gid, row) VALUES (?, ?)"

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
CREATE INDEX IF NOT EXISTS offline_queue_by_group ON offline_queue(gid, seq);
-- Before per-group flushes one plan covered the whole queue; it is migrated at start.
CREATE TABLE IF NOT EXISTS flush_plan (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq_hi INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS offline_plans (
    gid INTEGER PRIMARY KEY,
    seq_hi INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS offline_quarantine (
    seq INTEGER PRIMARY KEY,
    gid INTEGER NOT NULL,
    row TEXT NOT NULL,
    reason TEXT NOT NULL,
    quarantined_at REAL NOT NULL
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
        _migrate_flush_plan(writer)
        self._live: dict[str, int] = {}
        self._groups: dict[int, FeatureGroup] = {}
        for gid, name_key, spec, deleted in writer.execute(
            "SELECT gid, name_key, spec, deleted FROM feature_groups"
        ):
            self._groups[gid] = group_from_spec(json.loads(spec))
            if not deleted:
                self._live[name_key] = gid
        # Internal ids come from this counter, never from SQLite: an id handed to a create whose
        # transaction failed is not handed out again (AUTOINCREMENT would reuse a rolled-back one).
        self._gid_lock = threading.Lock()
        self._next_gid = 1 + _max_gid(writer)
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

    def find_group(self, gid: int) -> FeatureGroup | None:
        """Live or deleted (its queued offline rows are still written); None if never created."""
        return self._groups.get(gid)

    def live_groups(self) -> list[FeatureGroup]:
        return [self._groups[gid] for gid in list(self._live.values())]

    def live_items(self) -> list[tuple[int, FeatureGroup]]:
        return [(gid, self._groups[gid]) for gid in list(self._live.values())]

    def name_taken(self, name: str) -> bool:
        return name.lower() in self._live

    def create_group(self, group: FeatureGroup) -> None:
        key = group.name.lower()
        if key in self._live:
            raise _exists(group.name)
        with self._gid_lock:
            gid = self._next_gid
            self._next_gid += 1

        def apply(conn: sqlite3.Connection) -> None:
            if key in self._live:
                raise _exists(group.name)
            try:
                conn.execute("INSERT INTO feature_groups(gid, name_key, spec) VALUES (?, ?, ?)",
                             (gid, key, json.dumps(group.spec)))
            except sqlite3.IntegrityError:
                raise _exists(group.name) from None  # created by another write of this batch

        def publish(_: None) -> None:
            self._groups[gid] = group
            self._live[key] = gid

        self._committer.run(apply, publish)

    def replace_group(self, gid: int, group: FeatureGroup) -> None:
        def apply(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE feature_groups SET spec = ? WHERE gid = ?", (json.dumps(group.spec), gid))

        def publish(_: None) -> None:
            self._groups[gid] = group

        self._committer.run(apply, publish)

    def delete_group(self, gid: int) -> None:
        """Drop the group and its online records; queued offline rows are still flushed."""
        group = self._groups[gid]

        def apply(conn: sqlite3.Connection) -> None:
            conn.execute("UPDATE feature_groups SET deleted = 1 WHERE gid = ?", (gid,))
            conn.execute("DELETE FROM records WHERE gid = ?", (gid,))

        def publish(_: None) -> None:
            if self._live.get(group.name.lower()) == gid:
                del self._live[group.name.lower()]

        self._committer.run(apply, publish)

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
        return self.put_many([PendingPut(gid, record, online, offline, expires_at)], api_time) > 0

    def put_many(self, puts: list[PendingPut], api_time: float) -> int:
        """Apply several writes in one transaction (a BatchWriteRecord); how many the online store took.

        One `executemany` per table instead of a statement call per record: SQLite runs the rows
        in entry order, so the event-time rule still applies between entries for the same record.
        """
        encoded = [json.dumps(p.record.values) for p in puts]
        online = [(p.gid, p.record.record_id, p.record.event_time, p.expires_at, values, api_time)
                  for p, values in zip(puts, encoded, strict=True) if p.online]
        offline = [(p.gid, _offline_row(values, p.record.event_time, api_time, False))
                   for p, values in zip(puts, encoded, strict=True) if p.offline]

        def apply(conn: sqlite3.Connection) -> int:
            # Upsert only over an older or expired record: the event-time rule in one statement.
            taken = conn.executemany(_UPSERT, online).rowcount if online else 0
            if offline:
                conn.executemany(_ENQUEUE, offline)
            return int(taken)

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
    def plan_flushes(self, max_rows: int) -> dict[int, int]:
        """Each group's queue prefix its next flush writes: {gid: last seq}.

        A plan is recorded before any file is written and kept until its rows are dequeued, so
        a flush interrupted by a crash (or a failing sink) is replayed over the same rows.
        """

        def apply(conn: sqlite3.Connection) -> dict[int, int]:
            plans = dict(conn.execute("SELECT gid, seq_hi FROM offline_plans").fetchall())
            for (gid,) in conn.execute("SELECT DISTINCT gid FROM offline_queue").fetchall():
                if gid in plans:
                    continue
                row = conn.execute(
                    "SELECT seq FROM offline_queue WHERE gid = ? ORDER BY seq LIMIT 1 OFFSET ?",
                    (gid, max_rows - 1),
                ).fetchone() or conn.execute("SELECT MAX(seq) FROM offline_queue WHERE gid = ?", (gid,)).fetchone()
                plans[gid] = int(row[0])
                conn.execute("INSERT INTO offline_plans(gid, seq_hi) VALUES (?, ?)", (gid, plans[gid]))
            return plans

        return self._write(apply)

    def planned_rows(self, gid: int, seq_hi: int) -> tuple[list[OfflineRow], list[tuple[int, str]]]:
        """The rows of a plan, and (seq, reason) of those that cannot even be read."""
        with self._read() as conn:
            raw_rows = conn.execute(
                "SELECT seq, row FROM offline_queue WHERE gid = ? AND seq <= ? ORDER BY seq", (gid, seq_hi)
            ).fetchall()
        rows: list[OfflineRow] = []
        broken: list[tuple[int, str]] = []
        for seq, raw in raw_rows:
            try:
                data = json.loads(raw)
                rows.append(OfflineRow(seq, gid, data["v"], float(data["t"]), float(data["a"]), bool(data["d"])))
            except Exception as exc:  # whatever is wrong with it, it must not block the others
                broken.append((seq, f"unreadable queue row: {type(exc).__name__}: {exc}"))
        return rows, broken

    def quarantine(self, gid: int, bad: list[tuple[int, str]]) -> None:
        """Move rows that can never be written out of the queue, each with its reason."""
        now = time.time()

        def apply(conn: sqlite3.Connection) -> None:
            for seq, reason in bad:
                conn.execute(
                    "INSERT OR IGNORE INTO offline_quarantine(seq, gid, row, reason, quarantined_at) "
                    "SELECT seq, gid, row, ?, ? FROM offline_queue WHERE seq = ? AND gid = ?",
                    (reason[:1000], now, seq, gid),
                )
                conn.execute("DELETE FROM offline_queue WHERE seq = ?", (seq,))

        self._write(apply)

    def complete_flush(self, gid: int, seq_hi: int) -> None:
        def apply(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM offline_queue WHERE gid = ? AND seq <= ?", (gid, seq_hi))
            conn.execute("DELETE FROM offline_plans WHERE gid = ?", (gid,))

        self._write(apply)

    def queued_rows(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM offline_queue").fetchone()[0])

    def quarantined_rows(self) -> int:
        with self._read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM offline_quarantine").fetchone()[0])

    def quarantine_by_group(self) -> dict[str, dict[str, Any]]:
        """{group name: {"rows": n, "reason": the latest reason}} of quarantined offline rows."""
        with self._read() as conn:
            counts = conn.execute("SELECT gid, COUNT(*), MAX(seq) FROM offline_quarantine GROUP BY gid").fetchall()
            out: dict[str, dict[str, Any]] = {}
            for gid, count, last in counts:
                reason = conn.execute("SELECT reason FROM offline_quarantine WHERE seq = ?", (last,)).fetchone()[0]
                group = self._groups.get(gid)
                out[group.name if group else f"gid-{gid}"] = {"rows": int(count), "reason": reason}
        return out


def _exists(name: str) -> InUse:
    return InUse(f"Resource Already Exists: FeatureGroup with name {name} already exists. "
                 "Choose a different name.")


def _max_gid(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT MAX(gid) FROM feature_groups").fetchone()
    seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'feature_groups'").fetchone()
    return max(int(row[0] or 0), int(seq[0]) if seq else 0)


def _migrate_flush_plan(conn: sqlite3.Connection) -> None:
    """A queue-wide plan left by an older emulator becomes one plan per group over the same rows,
    so the replay writes the same files (their names derive from each group's rows)."""
    row = conn.execute("SELECT seq_hi FROM flush_plan WHERE id = 1").fetchone()
    if row is None:
        return
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT OR IGNORE INTO offline_plans(gid, seq_hi) "
        "SELECT gid, MAX(seq) FROM offline_queue WHERE seq <= ? GROUP BY gid", (int(row[0]),)
    )
    conn.execute("DELETE FROM flush_plan")
    conn.execute("COMMIT")


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
    conn.execute(_ENQUEUE, (gid, _offline_row(values_json, event_time, api_time, is_deleted)))


def _offline_row(values_json: str, event_time: float, api_time: float, is_deleted: bool) -> str:
    # The values are spliced in already serialised, to encode each record only once.
    return f'{{"v":{values_json},"t":{event_time!r},"a":{api_time!r},"d":{"true" if is_deleted else "false"}}}'
