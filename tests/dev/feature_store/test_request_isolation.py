"""Issue 19, finding 2: one client's bad request never fails another client's request.

Concurrent writers share one SQLite transaction (group commit). Before the fix a record
identifier holding a lone UTF-16 surrogate raised inside that transaction and rolled back every
write in it (the others got 500), and CreateFeatureGroup changed the in-memory maps before
COMMIT, so a rolled-back group could exist anyway and its internal id be handed out again.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.dev.feature_store.helpers import (
    DEFAULT_FEATURES,
    UNVALIDATED,
    as_dict,
    record,
    runtime_client,
    sagemaker_client,
)

pytestmark = pytest.mark.feature_store

T0 = "2024-05-01T10:00:00Z"
LONE_SURROGATE = "bad-\ud800-id"  # valid JSON ("\ud800"), not encodable as UTF-8


def _create(sm: Any, name: str) -> None:
    sm.create_feature_group(
        FeatureGroupName=name, RecordIdentifierFeatureName="id", EventTimeFeatureName="ts",
        FeatureDefinitions=DEFAULT_FEATURES, OnlineStoreConfig={"EnableOnlineStore": True},
    )


def _code(exc: ClientError) -> str:
    return f"{exc.response['Error']['Code']}/{exc.response['ResponseMetadata']['HTTPStatusCode']}"


def _bad_writer(url: str, group: str, stop: threading.Event, outcomes: Counter[str]) -> None:
    rt = runtime_client(url, UNVALIDATED)
    while not stop.is_set():
        try:
            rt.put_record(FeatureGroupName=group, Record=record(id=LONE_SURROGATE, ts=T0, n=1))
            outcomes["ok"] += 1
        except ClientError as exc:
            outcomes[_code(exc)] += 1


def test_a_bad_record_fails_only_its_own_request(emulator_factory: Any) -> None:
    """8 valid BatchWriteRecord writers and 2 writers of an unencodable identifier for 4 s."""
    emu = emulator_factory()
    _create(sagemaker_client(emu.url), "shared")
    stop = threading.Event()
    valid: Counter[str] = Counter()
    bad: Counter[str] = Counter()
    acked: list[str] = []
    lock = threading.Lock()

    def valid_writer(w: int) -> None:
        rt = runtime_client(emu.url)
        call = 0
        while not stop.is_set():
            ids = [f"w{w}-{call}-{j}" for j in range(25)]
            try:
                resp = rt.batch_write_record(Entries=[
                    {"FeatureGroupName": "shared", "Record": record(id=i, ts=T0, n=w)} for i in ids])
                outcome = "ok" if not resp["Errors"] and not resp["UnprocessedEntries"] else "partial"
                if outcome == "ok":
                    with lock:
                        acked.extend(ids)
            except ClientError as exc:
                outcome = _code(exc)
            with lock:
                valid[outcome] += 1
            call += 1

    threads = [threading.Thread(target=valid_writer, args=(w,)) for w in range(8)]
    threads += [threading.Thread(target=_bad_writer, args=(emu.url, "shared", stop, bad)) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(4)
    stop.set()
    for t in threads:
        t.join()

    print(f"\nvalid BatchWriteRecord calls: {dict(valid)}; bad PutRecord calls: {dict(bad)}")
    assert valid["ok"] > 0 and bad, (valid, bad)
    assert set(valid) == {"ok"}, f"valid calls failed: {dict(valid)}"
    assert set(bad) == {"ValidationError/400"}, dict(bad)
    # Every acknowledged write is there.
    rt = runtime_client(emu.url)
    for start in range(0, len(acked), 100):
        chunk = acked[start:start + 100]
        got = rt.batch_get_record(Identifiers=[{"FeatureGroupName": "shared", "RecordIdentifiersValueAsString": chunk}])
        assert {r["RecordIdentifierValueAsString"] for r in got["Records"]} == set(chunk)


def test_group_creation_is_atomic_and_internal_ids_are_never_shared(emulator_factory: Any) -> None:
    """Concurrent creates beside bad writers: a create that failed left no group behind, and
    every group that exists holds only its own records."""
    emu = emulator_factory()
    _create(sagemaker_client(emu.url), "noise")
    stop = threading.Event()
    bad: Counter[str] = Counter()
    noise = [threading.Thread(target=_bad_writer, args=(emu.url, "noise", stop, bad)) for _ in range(2)]
    for t in noise:
        t.start()
    created: dict[str, str] = {}
    lock = threading.Lock()

    def creator(c: int) -> None:
        sm = sagemaker_client(emu.url)
        for k in range(12):
            name = f"atomic-{c}-{k}"
            try:
                _create(sm, name)
                outcome = "ok"
            except ClientError as exc:
                outcome = _code(exc)
            with lock:
                created[name] = outcome

    creators = [threading.Thread(target=creator, args=(c,)) for c in range(6)]
    for t in creators:
        t.start()
    for t in creators:
        t.join()
    stop.set()
    for t in noise:
        t.join()

    outcomes = Counter(created.values())
    print(f"\nCreateFeatureGroup outcomes: {dict(outcomes)}; bad PutRecord calls: {dict(bad)}")
    sm, rt = sagemaker_client(emu.url), runtime_client(emu.url)
    existing = {s["FeatureGroupName"] for page in sm.get_paginator("list_feature_groups").paginate(
        NameContains="atomic-") for s in page["FeatureGroupSummaries"]}
    failed_but_exists = sorted(n for n, o in created.items() if o != "ok" and n in existing)
    assert failed_but_exists == [], f"{len(failed_but_exists)} creates failed yet the group exists"
    assert outcomes == Counter({"ok": len(created)}), dict(outcomes)
    # One record per group under the same identifier: each group must read back its own.
    for name in sorted(existing):
        rt.put_record(FeatureGroupName=name, Record=record(id="same", ts=T0, s=name))
    mixed = []
    for name in sorted(existing):
        got = as_dict(rt.get_record(FeatureGroupName=name, RecordIdentifierValueAsString="same")["Record"])
        if got["s"] != name:
            mixed.append((name, got["s"]))
    assert mixed == []
