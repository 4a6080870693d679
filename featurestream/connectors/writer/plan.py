"""The write plan: everything a task needs, computed on the driver and pickled to the executors."""

from __future__ import annotations

from dataclasses import dataclass

from featurestream.connectors.writer.settings import WriterSettings
from featurestream.connectors.writer.target import OnlineStoreTarget


@dataclass(frozen=True)
class WritePlan:
    """What to write (`target`), how (`settings`), and what the driver resolved for this batch."""

    target: OnlineStoreTarget
    settings: WriterSettings
    # The driver's resolution of the endpoint (see settings.runtime_endpoint).
    endpoint_url: str | None
    # Wall-clock end of the batch's time budget (the driver's clock; executors convert it).
    deadline_epoch: float
    # Calls per second for this worker's token bucket; None = unlimited.
    worker_tps: float | None
