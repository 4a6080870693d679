"""The group committer on a real SQLite file: one write's failure stays with that write.

Issue 19, finding 2 at the storage layer: writes of different clients share a transaction;
an exception inside one write rolls back that write only (a SAVEPOINT each), and in-memory
state published by a write changes only after its transaction committed.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from featurestream.dev.feature_store.commit import GroupCommitter
from featurestream.dev.feature_store.errors import InternalFailure

pytestmark = pytest.mark.feature_store


def _committer(path: Path) -> tuple[GroupCommitter, sqlite3.Connection]:
    conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.executescript(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);"
        "CREATE TABLE t (k TEXT PRIMARY KEY, parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);"
    )
    return GroupCommitter(conn), conn


def _one_batch(committer: GroupCommitter, writes: list[tuple[object, object]]) -> list[object]:
    """Run `writes` (fn, after_commit) so that they share one transaction: a first write holds
    the leader's batch open until all of them are queued behind it."""
    holding, release = threading.Event(), threading.Event()
    outcomes: list[object] = [None] * len(writes)

    def hold(conn: sqlite3.Connection) -> None:
        holding.set()
        release.wait(10)

    leader = threading.Thread(target=committer.run, args=(hold,))
    leader.start()
    assert holding.wait(10)

    def run(i: int) -> None:
        fn, after = writes[i]
        try:
            outcomes[i] = committer.run(fn, after)  # type: ignore[arg-type]
        except Exception as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(writes))]
    for t in threads:
        t.start()
    for _ in range(1000):  # until all are queued behind the held batch
        if len(committer._queue) == len(writes):
            break
        threading.Event().wait(0.01)
    release.set()
    for t in [*threads, leader]:
        t.join()
    return outcomes


def test_an_exception_inside_one_write_rolls_back_that_write_only(tmp_path: Path) -> None:
    committer, conn = _committer(tmp_path / "db.sqlite3")

    def good(key: str):  # type: ignore[no-untyped-def]
        return lambda c: c.execute("INSERT INTO t(k) VALUES (?)", (key,)).rowcount

    def bad(c: sqlite3.Connection) -> None:
        c.execute("INSERT INTO t(k) VALUES ('half-done')")
        "\ud800".encode()  # fails after changing something, as the surrogate identifier did

    commits = committer.commits
    outcomes = _one_batch(committer, [(good("a"), None), (bad, None), (good("b"), None)])
    assert committer.commits == commits + 2  # the holder's batch, then these three together
    assert outcomes[0] == 1 and outcomes[2] == 1
    assert isinstance(outcomes[1], InternalFailure)
    assert sorted(r[0] for r in conn.execute("SELECT k FROM t")) == ["a", "b"]


def test_after_commit_runs_only_when_the_transaction_commits(tmp_path: Path) -> None:
    committer, conn = _committer(tmp_path / "db.sqlite3")
    published: list[str] = []

    def insert(key: str, parent: int | None = None):  # type: ignore[no-untyped-def]
        return lambda c: c.execute("INSERT INTO t(k, parent) VALUES (?, ?)", (key, parent)).rowcount

    # A deferred foreign key fails at COMMIT itself: the whole batch is lost, so nothing of it
    # may be published (before the fix the group maps changed before COMMIT).
    outcomes = _one_batch(committer, [
        (insert("x"), lambda _: published.append("x")),
        (insert("orphan", parent=42), lambda _: published.append("orphan")),
    ])
    assert all(isinstance(o, InternalFailure) for o in outcomes)
    assert published == []
    assert conn.execute("SELECT COUNT(*) FROM t").fetchone()[0] == 0

    assert committer.run(insert("y"), lambda _: published.append("y")) == 1
    assert published == ["y"]
