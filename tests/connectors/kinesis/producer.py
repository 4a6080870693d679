"""Test data into kinesis-local from one thread (concurrent producers slow the emulator down a lot)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

PUT_BATCH = 500


class ProduceError(RuntimeError):
    """The emulator refused records; the test's expectation would be wrong, so stop."""


def put_all(client: Any, stream: str, records: Sequence[tuple[str, bytes]]) -> None:
    for start in range(0, len(records), PUT_BATCH):
        chunk = records[start:start + PUT_BATCH]
        response = client.put_records(StreamName=stream,
                                      Records=[{"PartitionKey": key, "Data": data} for key, data in chunk])
        if response.get("FailedRecordCount"):
            raise ProduceError(f"{response['FailedRecordCount']} records refused by {stream}")


def split_in_half(client: Any, stream: str, shard_id: str) -> None:
    shard = next(s for s in client.list_shards(StreamName=stream)["Shards"] if s["ShardId"] == shard_id)
    low = int(shard["HashKeyRange"]["StartingHashKey"])
    high = int(shard["HashKeyRange"]["EndingHashKey"])
    client.split_shard(StreamName=stream, ShardToSplit=shard_id, NewStartingHashKey=str((low + high) // 2 + 1))
    client.get_waiter("stream_exists").wait(StreamName=stream, WaiterConfig={"Delay": 0.2, "MaxAttempts": 150})


class BackgroundProducer(threading.Thread):
    """Puts `records` in order; calls `midway` once after the first `midway_after` records."""

    def __init__(self, client: Any, stream: str, records: Sequence[tuple[str, bytes]],
                 midway_after: int, midway: Callable[[], None]) -> None:
        super().__init__(name=f"producer-{stream}", daemon=True)
        self.client, self.stream, self.records = client, stream, records
        self.midway_after, self.midway = midway_after, midway
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            put_all(self.client, self.stream, self.records[:self.midway_after])
            self.midway()
            put_all(self.client, self.stream, self.records[self.midway_after:])
        except BaseException as e:  # surfaced by finish()
            self.error = e

    def finish(self) -> None:
        self.join()
        if self.error is not None:
            raise self.error
