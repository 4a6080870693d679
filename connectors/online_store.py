"""Online-store sink: the latest record per entity → SageMaker Feature Store PutRecord.

Runs inside `foreachBatch` on the executors (`foreachPartition`), never via `toPandas()` on the
driver. Each Python worker keeps one boto3 client per (region, endpoint) — clients are thread-safe,
sessions are not — and writes a partition with a bounded thread pool. PutRecord is a full overwrite
with the record's EventTime, so replaying a micro-batch writes the same records again and changes
nothing online (SageMaker keeps the newest EventTime).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from featurestream.errors import SinkError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

_clients: dict[tuple[str, int], Any] = {}
_clients_lock = threading.Lock()


@dataclass(frozen=True)
class OnlineStoreTarget:
    """Everything an executor needs to write one feature group; pickled into the closure."""

    feature_group_name: str
    record_identifier: str
    event_time_feature: str
    feature_names: tuple[str, ...]
    region: str
    threads: int = 8
    max_attempts: int = 8


def _client(target: OnlineStoreTarget) -> Any:
    """One client per worker process; the endpoint comes from AWS_ENDPOINT_URL_* like any boto3 user."""
    import boto3
    from botocore.config import Config

    key = (target.region, target.threads)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            config = Config(
                region_name=target.region,
                max_pool_connections=max(10, target.threads),
                retries={"mode": "standard", "max_attempts": target.max_attempts},
                connect_timeout=5,
                read_timeout=30,
            )
            client = boto3.session.Session().client("sagemaker-featurestore-runtime", config=config)
            _clients[key] = client
        return client


def format_event_time(value: datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a `Z`, a form SageMaker accepts for String EventTime."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def format_value(value: Any) -> str | None:
    """A feature value as SageMaker's ValueAsString; None (and NaN) leave the feature out."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else repr(value)
    if isinstance(value, datetime):
        return format_event_time(value)
    return str(value)


def to_record(row: dict[str, Any], target: OnlineStoreTarget) -> list[dict[str, str]]:
    record = [
        {"FeatureName": target.record_identifier, "ValueAsString": str(row[target.record_identifier])},
        {"FeatureName": target.event_time_feature, "ValueAsString": format_event_time(row[target.event_time_feature])},
    ]
    for name in target.feature_names:
        text = format_value(row.get(name))
        if text is not None:
            record.append({"FeatureName": name, "ValueAsString": text})
    return record


def write_records(target: OnlineStoreTarget, records: Sequence[list[dict[str, str]]]) -> int:
    """PutRecord each record with the worker's thread pool; raise SinkError when one fails for good."""
    if not records:
        return 0
    client = _client(target)

    def put(record: list[dict[str, str]]) -> None:
        client.put_record(FeatureGroupName=target.feature_group_name, Record=record)

    with ThreadPoolExecutor(max_workers=min(target.threads, len(records))) as pool:
        futures = [pool.submit(put, record) for record in records]
        errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise SinkError(f"{len(errors)} of {len(records)} PutRecord calls to {target.feature_group_name} "
                        f"failed; first: {errors[0]}") from errors[0]
    return len(records)


def write_partition(target: OnlineStoreTarget, rows: Iterable[Any]) -> Iterator[int]:
    """`mapPartitions` body: write the partition, yield how many records were written."""
    records = [to_record(row.asDict(), target) for row in rows]
    yield write_records(target, records)


@dataclass(frozen=True)
class OnlineStoreSink:
    """Writes a micro-batch of full records (one row per entity) to the online store.

    `records` has the record identifier, the event-time column (a timestamp) and the feature
    columns named in the target. The write runs on the executors; the driver gets a count back.
    """

    target: OnlineStoreTarget

    def write_batch(self, records: DataFrame, batch_id: int) -> int:
        started = time.monotonic()
        written = int(records.rdd.mapPartitions(partial(write_partition, self.target)).sum())
        log.info(json.dumps({
            "event": "batch_written", "feature_group": self.target.feature_group_name, "batch_id": batch_id,
            "records_written": written, "seconds": round(time.monotonic() - started, 3),
        }))
        return written
