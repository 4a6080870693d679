"""The write plan: everything a task needs, computed on the driver and pickled to the executors."""

from __future__ import annotations

from dataclasses import dataclass

from featurestream.connectors.writer.settings import WriteMode


@dataclass(frozen=True)
class WritePlan:
    feature_group: str
    identifier: str
    event_time: str
    features: tuple[str, ...]
    region: str
    endpoint_url: str | None
    mode: WriteMode
    threads: int
    batch_size: int
    max_attempts: int
    backoff_base_s: float
    backoff_cap_s: float
    call_timeout_s: float
    # Wall-clock end of the batch's time budget (the driver's clock; executors convert it).
    deadline_epoch: float
    # Calls per second for this worker's token bucket; None = unlimited.
    worker_tps: float | None
    batch_id: int
    sink: str = "featurestream"
