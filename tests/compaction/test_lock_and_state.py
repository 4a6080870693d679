"""The lock and the compare-and-swap state store it stands on, on a local disk and on S3."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from featurestream.compaction.errors import LockBusyError, LockLostError, PreconditionFailed
from featurestream.compaction.lock import LOCK_PATH, CompactionLock, LockInfo
from featurestream.compaction.storage import LocalStore, S3Store, StateStore
from featurestream.connectors.offline_store import StoreUri
from tests.compaction.conftest import s3_client


@pytest.fixture(params=["local", "s3"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[StateStore, StoreUri]]:
    if request.param == "local":
        yield LocalStore(), StoreUri.parse(tmp_path / "fg")
        return
    endpoint = request.getfixturevalue("moto_s3")
    client = s3_client(endpoint)
    bucket = f"fs-lock-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    yield S3Store(client), StoreUri.parse(f"s3://{bucket}/out/fg")


def lock(store: StateStore, root: StoreUri, run: str, clock: Any = None, stale: float = 60.0) -> CompactionLock:
    kwargs: dict[str, Any] = {"stale_after_s": stale, "heartbeat_s": 3600.0}
    if clock is not None:
        kwargs["clock"] = clock
    return CompactionLock(store, root, run, **kwargs)


def test_second_run_is_refused_while_the_first_holds_the_lock(place: tuple[StateStore, StoreUri]) -> None:
    store, root = place
    first = lock(store, root, "run-1")
    first.acquire()
    with pytest.raises(LockBusyError, match="run-1"):
        lock(store, root, "run-2").acquire()
    first.ensure_held()
    first.release()
    assert store.read(root.join(LOCK_PATH)) is None
    with lock(store, root, "run-3"):
        pass


def test_stale_lock_is_taken_over_by_exactly_one_run(place: tuple[StateStore, StoreUri]) -> None:
    store, root = place
    dead = lock(store, root, "dead", clock=lambda: 1000.0)
    dead.acquire()
    dead._stop.set()  # its process is gone: no more heartbeats, no release
    winners: list[str] = []
    losers: list[str] = []

    def contend(name: str) -> None:
        candidate = lock(store, root, name, stale=30.0)
        try:
            candidate.acquire()
            winners.append(name)
        except LockBusyError:
            losers.append(name)

    threads = [threading.Thread(target=contend, args=(f"run-{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(winners) == 1 and len(losers) == 3
    current = store.read(root.join(LOCK_PATH))
    assert current is not None
    holder = LockInfo.decode(current.data)
    assert holder is not None and holder.run_id == winners[0]
    # The old owner finds out before it could commit.
    with pytest.raises(LockLostError):
        dead.ensure_held()


def test_a_fresh_heartbeat_keeps_the_lock(place: tuple[StateStore, StoreUri]) -> None:
    store, root = place
    now = [1000.0]
    owner = CompactionLock(store, root, "owner", stale_after_s=30.0, heartbeat_s=0.01, clock=lambda: now[0])
    owner.acquire()
    now[0] = 1100.0  # long after acquisition, but the owner keeps beating
    deadline = threading.Event()
    while not deadline.wait(0.02):
        current = store.read(root.join(LOCK_PATH))
        info = LockInfo.decode(current.data) if current else None
        if info is not None and info.heartbeat_at == 1100.0:
            break
    with pytest.raises(LockBusyError):
        CompactionLock(store, root, "other", stale_after_s=30.0, heartbeat_s=10.0, clock=lambda: now[0]).acquire()
    owner.ensure_held()
    owner.release()


def test_conditional_writes(place: tuple[StateStore, StoreUri]) -> None:
    store, root = place
    uri = root.join("_compaction/object.json")
    token = store.create(uri, b"one")
    assert token is not None
    assert store.create(uri, b"two") is None
    newer = store.replace(uri, b"three", token)
    with pytest.raises(PreconditionFailed):
        store.replace(uri, b"four", token)
    current = store.read(uri)
    assert current is not None and current.data == b"three" and current.token == newer
