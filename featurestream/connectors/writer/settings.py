"""How the online-store writer behaves: one frozen, picklable value shipped to the executors."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from featurestream.config.profile import FeatureStoreSpec

WriteMode = Literal["auto", "batch", "put"]
SinkKind = Literal["featurestream", "sagemaker-connector"]

# BatchWriteRecord takes 1 to 25 entries per call.
MAX_BATCH_ENTRIES = 25


@dataclass(frozen=True)
class WriterSettings:
    """Writer knobs; see `FeatureStoreSpec` for what each one means and its default."""

    sink: SinkKind = "featurestream"
    write_mode: WriteMode = "auto"
    threads: int = 8
    max_attempts: int = 8
    account_tps: float | None = 10_000.0
    executors: int | None = None
    backoff_base_ms: int = 25
    backoff_cap_ms: int = 2_000
    batch_timeout_s: float = 300.0
    call_timeout_s: float = 10.0
    dlq_path: str | None = None
    dlq_max_records_per_batch: int = 100_000
    endpoint_url: str | None = None
    batch_size: int = MAX_BATCH_ENTRIES

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= MAX_BATCH_ENTRIES:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_ENTRIES}, got {self.batch_size}")
        if self.threads < 1 or self.max_attempts < 1:
            raise ValueError("threads and max_attempts must be at least 1")

    @classmethod
    def from_spec(cls, store: FeatureStoreSpec, dlq_path: str | None) -> WriterSettings:
        """The profile's writer settings; `dlq_path` is used when the profile names none."""
        return cls(
            sink=store.sink,
            write_mode=store.write_mode,
            threads=store.threads_per_partition,
            max_attempts=store.max_attempts,
            account_tps=store.account_tps,
            executors=store.executors,
            backoff_base_ms=store.backoff_base_ms,
            backoff_cap_ms=store.backoff_cap_ms,
            batch_timeout_s=store.batch_timeout_s,
            call_timeout_s=store.call_timeout_s,
            dlq_path=store.dlq_path or dlq_path,
            dlq_max_records_per_batch=store.dlq_max_records_per_batch,
            endpoint_url=store.runtime_endpoint_url,
        )


def runtime_endpoint(settings: WriterSettings) -> str | None:
    """The endpoint the executors use, resolved on the driver.

    Python workers inherit the environment of the JVM at its launch, not the driver's current
    one, so an AWS_ENDPOINT_URL_* override is read here and shipped with the plan.
    """
    return (
        settings.endpoint_url
        or os.environ.get("AWS_ENDPOINT_URL_SAGEMAKER_FEATURESTORE_RUNTIME")
        or os.environ.get("AWS_ENDPOINT_URL")
        or None
    )


def worker_tps(account_tps: float | None, executors: int, slots_per_executor: int) -> float | None:
    """Calls per second one Python worker may make.

    Each executor's budget is `account_tps / executors`; it runs one Python worker per task slot,
    each with its own token bucket, so a worker gets the executor's budget over its slots. At most
    every slot writes at once, so the sum never exceeds the account budget (with fewer partitions
    than slots some of it goes unused, which is the safe side).
    """
    if account_tps is None:
        return None
    return account_tps / max(1, executors) / max(1, slots_per_executor)
